"""Many videos at once (`python -m service predict` on several files or a folder), and the timeline
as a table: real videos of a real face, a bad file among them, a batch stopped and run again."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

from videos import astronaut_frames, write_video

from service.tables import timeline_csv
from training.video import Orientation


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAMFER_TORCH_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "service", *args], capture_output=True, text=True, timeout=600, env=env, cwd=cwd
    )


def read_csv(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def assert_timeline_is_the_results(table: list[dict], result: dict) -> None:
    """The CSV's rows are the result's people's clips, number for number."""
    classes = list(result["probabilities"])
    clips = [(p["id"], c) for p in result["people"] for c in p["clips"]]
    assert len(table) == len(clips) and clips
    for row, (person, clip) in zip(table, clips):
        assert (int(row["person"]), int(row["clip"])) == (person, clip["index"])
        assert (float(row["start_s"]), float(row["end_s"])) == (clip["start_s"], clip["end_s"])
        assert row["face"] == str(int(clip["face"])) and row["label"] == (clip["label"] or "")
        assert [float(row[f"p_{c}"]) if row[f"p_{c}"] else None for c in classes] == [
            clip["probabilities"][c] if clip["probabilities"] else None for c in classes
        ]


def test_timeline_csv_has_a_row_per_person_per_clip_with_the_jsons_numbers(videos, people_videos, model_dir, tmp_path):
    from service.pipeline import Predictor, analyse_video
    from service.settings import Settings

    predictor = Predictor(model_dir)
    for video in (videos["face_gap_face"], people_videos["cross"]):  # clips without a face; two people
        result = analyse_video(video, predictor, Settings(model_dir=model_dir, storage_dir=tmp_path))
        text = timeline_csv(result)
        assert text.splitlines()[0] == ",".join(
            ["person", "clip", "start_s", "end_s", "face", "label", *(f"p_{c}" for c in predictor.classes)]
        )
        assert_timeline_is_the_results(read_csv(text), json.loads(json.dumps(result)))


def test_predict_csv_prints_the_timeline(videos):
    done = run("predict", str(videos["astronaut_webm"]), "--csv")
    assert done.returncode == 0, done.stderr
    table = read_csv(done.stdout)
    assert (
        len(table) == 7 and {row["person"] for row in table} == {"1"} and all(row["label"] for row in table)
    )  # 20 frames: 7 clips


def test_a_folder_of_videos_is_one_batch_that_goes_on_where_it_stopped(tmp_path):
    """A folder of real videos (one sideways, as a phone stores it, one in a sub-folder) and a bad
    file: the model is loaded once, each video gets its result and timeline, the bad one its error,
    and the summary a row each; run again, only what is not done is analysed."""
    frames = astronaut_frames(24)
    inbox = tmp_path / "inbox"
    write_video(inbox / "upright.mp4", frames)
    write_video(inbox / "phone.mp4", frames, orientation=Orientation(90))
    write_video(inbox / "more" / "short.webm", frames[:16])
    (inbox / "broken.mp4").write_text("not a video\n" * 40)
    (inbox / "notes.txt").write_text("not a video, and not named like one: left alone\n")
    out = tmp_path / "results"

    done = run("predict", str(inbox), "--out", str(out))
    assert done.returncode == 1, done.stderr  # one video failed
    assert done.stderr.count("loaded on") == 1  # the model, once for the batch
    assert "4 videos: 3 analysed, 0 done before, 1 failed" in done.stdout
    assert "broken.mp4: error (unsupported_format)" in done.stdout + done.stderr
    names = ["broken.mp4", "more/short.webm", "phone.mp4", "upright.mp4"]
    summary = read_csv((out / "summary.csv").read_text())
    assert [row["video"] for row in summary] == names
    assert summary[0]["error_code"] == "unsupported_format" and summary[0]["person"] == ""
    for row, name in zip(summary[1:], names[1:]):
        result = json.loads((out / name / "result.json").read_text())
        assert (row["expression"], float(row["confidence"]), float(row["duration_s"])) == (
            result["expression"],
            result["confidence"],
            result["video"]["duration_s"],
        )
        assert row["person"] == "1" and row["main"] == "1" and row["error"] == ""
        assert_timeline_is_the_results(read_csv((out / name / "timeline.csv").read_text()), result)
        assert Path(result["attention_maps"][0]["url"]).parent == (out / name).resolve()  # its images beside it
    assert json.loads((out / "phone.mp4" / "result.json").read_text())["video"]["rotation"] == 90
    assert json.loads((out / "broken.mp4" / "error.json").read_text())["error"]["code"] == "unsupported_format"

    # stopped half way through the upright video (its result not yet written), a video added since
    (out / "upright.mp4" / "result.json").unlink()
    before = (out / "phone.mp4" / "result.json").stat().st_mtime_ns
    write_video(inbox / "new.mkv", frames[:16])
    done = run("predict", str(inbox), "--out", str(out), "--quiet")
    assert "5 videos: 2 analysed, 2 done before, 1 failed" in done.stdout, done.stdout + done.stderr
    assert (out / "phone.mp4" / "result.json").stat().st_mtime_ns == before  # not analysed again
    assert (out / "upright.mp4" / "result.json").is_file() and (out / "new.mkv" / "result.json").is_file()
    assert len(read_csv((out / "summary.csv").read_text())) == 5


def test_several_files_are_a_batch_and_a_batch_needs_its_folder(videos, tmp_path):
    done = run("predict", str(videos["astronaut_mp4"]), str(videos["no_face"]))
    assert done.returncode != 0 and "--out DIR" in done.stderr
    done = run("predict", str(videos["astronaut_mp4"]), str(videos["no_face"]), "--out", str(tmp_path / "out"))
    assert done.returncode == 1
    summary = read_csv((tmp_path / "out" / "summary.csv").read_text())
    assert [(row["video"], row["expression"], row["error_code"]) for row in summary] == [
        ("astronaut.mp4", "happy", ""),
        ("no_face.mp4", "", "no_face"),
    ]
