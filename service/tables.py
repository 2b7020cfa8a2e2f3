"""A result as tables, for a spreadsheet or pandas: the timeline (a row per person per clip) and a
batch's summary (a row per video and person). The API's GET /jobs/{id}/timeline.csv, `predict --csv`,
`submit --csv` and the batches of `predict`/`submit` all write these, from the result's JSON, so a
table holds the same numbers as the JSON it came from. Headers say their units (`_s`: seconds;
`p_<class>`: a probability from 0 to 1)."""

from __future__ import annotations

import csv
import io


def classes_of(result: dict) -> list[str]:
    """The served model's classes in the result's order (its top-level probabilities)."""
    return list(result["probabilities"])


def timeline_rows(result: dict) -> list[dict]:
    """A row per person per clip of theirs: when, whether their face was in all its frames, the
    clip's label and each class's calibrated probability (empty where the clip had no face)."""
    classes = classes_of(result)
    rows = []
    for person in result["people"]:
        for clip in person["clips"]:
            probabilities = clip["probabilities"] or {}
            rows.append(
                {
                    "person": person["id"],
                    "clip": clip["index"],
                    "start_s": clip["start_s"],
                    "end_s": clip["end_s"],
                    "face": int(clip["face"]),
                    "label": clip["label"] or "",
                    **{f"p_{c}": probabilities.get(c, "") for c in classes},
                }
            )
    return rows


def timeline_csv(result: dict) -> str:
    classes = classes_of(result)
    return to_csv(
        ["person", "clip", "start_s", "end_s", "face", "label", *(f"p_{c}" for c in classes)], timeline_rows(result)
    )


SUMMARY_FIELDS = [
    "video",
    "person",
    "main",
    "expression",
    "confidence",
    "first_s",
    "last_s",
    "duration_s",
    "error_code",
    "error",
]


def summary_rows(video: str, result: dict | None = None, error: tuple[str, str] | None = None) -> list[dict]:
    """A batch summary's rows for one video: a row per person seen (`main`: the one the top level
    answers for; `duration_s`: the video's length), or one row with the error that stopped it."""
    if result is None:
        code, message = error or ("", "")
        return [{"video": video, "error_code": code, "error": message}]
    main = next((p["id"] for p in result["people"] if p["scored"]), None)
    return [
        {
            "video": video,
            "person": p["id"],
            "main": int(p["id"] == main),
            "expression": p["expression"] or "",
            "confidence": "" if p["confidence"] is None else p["confidence"],
            "first_s": p["first_s"],
            "last_s": p["last_s"],
            "duration_s": result["video"]["duration_s"],
        }
        for p in result["people"]
    ]


def to_csv(fields: list[str], rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fields, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
