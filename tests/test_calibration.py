"""Calibration (training/calibration.py, benchmarks/calibrate.py): a temperature fitted on clips
recovers an overconfident network's, lowers the calibration error, changes no label, travels in the
checkpoint, and the service reports probabilities at it while its answers stay the network's."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from training.calibration import apply_temperature, expected_calibration_error, fit_temperature, reliability

REPO = Path(__file__).resolve().parents[1]


def overconfident(n=4000, k=8, t_true=2.5, seed=0):
    """Clips whose labels follow softmax(z / t_true) while the network says softmax(z)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 4, (n, k))
    truth = apply_temperature(np.exp(z) / np.exp(z).sum(1, keepdims=True), t_true)
    labels = np.array([rng.choice(k, p=row) for row in truth])
    return np.exp(z) / np.exp(z).sum(1, keepdims=True), labels


def test_the_fitted_temperature_is_the_overconfident_networks():
    p, y = overconfident()
    t = fit_temperature(p, y)
    assert 2.2 < t < 2.8
    before, after = expected_calibration_error(p, y), expected_calibration_error(apply_temperature(p, t), y)
    assert before > 0.1 and after < 0.03


def test_a_temperature_changes_no_label_and_one_is_nothing():
    p, _ = overconfident(200)
    for t in (0.5, 1.7, 6.0):
        q = apply_temperature(p, t)
        np.testing.assert_allclose(q.sum(1), 1.0)
        assert (q.argmax(1) == p.argmax(1)).all()
    assert apply_temperature(p, 1.0) is not None and np.array_equal(apply_temperature(p, 1.0), p)
    back = apply_temperature(apply_temperature(p, 2.0), 0.5)  # undone, but for what fell under the floor
    np.testing.assert_allclose(back[p > 1e-3], p[p > 1e-3], rtol=1e-3, atol=1e-4)


def test_reliability_bins_count_every_clip():
    p, y = overconfident(500)
    rows = reliability(p, y, bins=10)
    assert sum(r["clips"] for r in rows) == 500 and len(rows) == 10


def answers_file(path: Path, classes: list[str], sets=("london", "canada")) -> Path:
    p, y = overconfident(600, k=len(classes), seed=1)
    videos = []
    for i in range(600):  # one clip a video: each clip's label is its own draw
        videos.append(
            {
                "set": sets[i % 2],
                "id": str(i),
                "want": classes[int(y[i])],
                "kind": "still",
                "clip_probabilities": [[round(float(v), 4) for v in p[i]]],
            }
        )
    path.write_text(json.dumps({"classes": classes, "kind": "studio", "videos": videos}))
    return path


def test_calibrate_writes_the_temperature_into_a_checkpoint_and_the_service_reports_at_it(tmp_path, model_dir, videos):
    from service.pipeline import Predictor, analyse_video
    from service.settings import Settings
    from training.checkpoint import load_checkpoint, read_config

    ckpt = tmp_path / "ckpt"
    shutil.copytree(model_dir, ckpt)
    config = read_config(ckpt)
    config.pop("calibration", None)
    (ckpt / "config.json").write_text(json.dumps(config))
    answers = answers_file(tmp_path / "a.json", config["classes"])
    out = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "calibrate.py"),
            "--answers",
            str(answers),
            "--write",
            str(ckpt),
            "--figure",
            str(tmp_path / "r.png"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "| canada |" in out.stdout and (tmp_path / "r.png").stat().st_size > 1000
    t = read_config(ckpt)["calibration"]["temperature"]
    assert 1.5 < t < 4
    assert f"temperature: {t}" in (ckpt / "MODEL_CARD.md").read_text()
    load_checkpoint(ckpt)  # the weights and their recorded sha256 are untouched

    settings = Settings(model_dir=ckpt, storage_dir=tmp_path)
    plain = Predictor(model_dir)
    plain.temperature = 1.0
    warm = Predictor(ckpt)
    assert warm.temperature == t
    a = analyse_video(videos["astronaut_mp4"], plain, settings)
    b = analyse_video(videos["astronaut_mp4"], warm, settings)
    assert [c["label"] for c in a["clips"]] == [c["label"] for c in b["clips"]]
    assert (a["expression"], a["votes"], a["segments"]) == (b["expression"], b["votes"], b["segments"])
    assert b["model"]["temperature"] == t
    pa = np.array([[c["probabilities"][k] for k in warm.classes] for c in a["clips"] if c["face"]])
    pb = np.array([[c["probabilities"][k] for k in warm.classes] for c in b["clips"] if c["face"]])
    # Both are rounded to 4 decimals. Tempering pa raises its tiny probabilities (0.0001 is a rounding of anything
    # from 0.00005 to 0.00015) to the power 1/T, where their rounding counts; un-tempering pb, whose smallest are near
    # 0.01, does not: the comparison goes that way.
    np.testing.assert_allclose(apply_temperature(pb, 1 / t), pa, atol=2e-3)
    assert (pb.argmax(1) == pa.argmax(1)).all()
    assert pb.max(1).mean() < pa.max(1).mean()  # less sure
