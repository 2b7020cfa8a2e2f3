"""Many videos at once: what `python -m service predict` and `submit` do when given several files or
a folder. One `analyse` call per video (the model loaded once by the caller, or a running service),
a progress bar over the batch, and in the output folder, per video, its result (`result.json`), its
timeline (`timeline.csv`) and, in-process, its images; then `summary.csv`, a row per video and person.

A batch goes on where it stopped: a video whose `result.json` exists is not analysed again (it is
written last, so a video cut off half way is done again). A video that cannot be analysed (not a
video, damaged, no face, the service refused it) is recorded in its `error.json` and in the summary,
and the batch carries on; it is tried again when the batch is run again.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from service.tables import SUMMARY_FIELDS, summary_rows, timeline_csv, to_csv

log = logging.getLogger(__name__)

# Files a folder's videos are told by (a file named on the command line is tried whatever its name):
# the suffixes of the containers training.video reads.
VIDEO_SUFFIXES = {
    ".mp4",
    ".m4v",
    ".mov",
    ".3gp",
    ".3g2",
    ".mkv",
    ".webm",
    ".avi",
    ".flv",
    ".ts",
    ".mts",
    ".m2ts",
    ".mpg",
    ".mpeg",
    ".vob",
    ".ogg",
    ".ogv",
}
RESULT, TIMELINE, ERROR, SUMMARY = "result.json", "timeline.csv", "error.json", "summary.csv"


@dataclass(frozen=True)
class Video:
    path: Path
    name: str  # its folder under the batch's output folder, and its name in the summary


def is_batch(paths: list[str]) -> bool:
    """Several videos, or a folder of them (one file: the single-video commands, as before)."""
    return len(paths) > 1 or any(Path(p).is_dir() for p in paths)


def videos_of(paths: list[str]) -> list[Video]:
    """The batch's videos, in order: each file given, and each folder's videos (by suffix, its
    sub-folders too, sorted), named by their path under the folder given."""
    found: list[tuple[Path, str]] = []
    for given in map(Path, paths):
        if given.is_dir():
            found += [
                (f, f.relative_to(given).as_posix())
                for f in sorted(given.rglob("*"))
                if f.is_file()
                and f.suffix.lower() in VIDEO_SUFFIXES
                and not any(part.startswith(".") for part in f.relative_to(given).parts)
            ]
        else:
            found.append((given, given.name))
    videos, used = [], set()
    for path, name in found:
        unique, k = name, 1
        while unique in used:  # two files of one name from different folders
            k += 1
            unique = f"{name}~{k}"
        used.add(unique)
        videos.append(Video(path, unique))
    return videos


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text)
    os.replace(tmp, path)


def run_batch(
    videos: list[Video], out: Path, analyse: Callable[[Path, Path], dict], quiet: bool = False
) -> dict[str, int]:
    """Analyse each video not done before; `analyse(video, its folder)` returns the result or raises
    an error with `.code` and `.message` (training.video.VideoError, service.client.ServiceError).
    Writes summary.csv over the whole batch (done before or now); returns the counts."""
    from tqdm import tqdm

    out.mkdir(parents=True, exist_ok=True)
    counts = {"analysed": 0, "skipped": 0, "failed": 0}
    bar = tqdm(videos, unit="video", disable=quiet or None, dynamic_ncols=True)
    for video in bar:
        folder = out / video.name
        bar.set_postfix_str(video.name[-40:])
        if (folder / RESULT).is_file():
            counts["skipped"] += 1
            continue
        folder.mkdir(parents=True, exist_ok=True)
        try:
            result = analyse(video.path, folder)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as e:
            code, message = getattr(e, "code", None), getattr(e, "message", None)
            if not (isinstance(code, str) and isinstance(message, str)):  # not a video's fault: say so, carry on
                log.exception("%s: analysis failed", video.path)
                code, message = "internal_error", f"{type(e).__name__}: {e}"
            write_atomically(folder / ERROR, json.dumps({"error": {"code": code, "message": message}}, indent=2))
            bar.write(f"{video.name}: error ({code}): {message}")
            counts["failed"] += 1
            continue
        write_atomically(folder / TIMELINE, timeline_csv(result))
        write_atomically(folder / RESULT, json.dumps(result, indent=2))  # last: it marks the video done
        (folder / ERROR).unlink(missing_ok=True)
        counts["analysed"] += 1
    bar.close()
    write_atomically(out / SUMMARY, summary_csv(videos, out))
    return counts


def summary_csv(videos: list[Video], out: Path) -> str:
    rows = []
    for video in videos:
        folder = out / video.name
        if (folder / RESULT).is_file():
            rows += summary_rows(video.name, json.loads((folder / RESULT).read_text()))
        elif (folder / ERROR).is_file():
            error = json.loads((folder / ERROR).read_text())["error"]
            rows += summary_rows(video.name, error=(error["code"], error["message"]))
        else:
            rows += summary_rows(video.name, error=("not_analysed", "The batch stopped before this video."))
    return to_csv(SUMMARY_FIELDS, rows)
