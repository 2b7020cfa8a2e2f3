"""Folds, and the training commands end to end on a tiny synthetic set."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from training.cv import make_folds


def subjects_and_labels(n_subjects=30, seed=0):
    rng = np.random.default_rng(seed)
    subjects, labels = [], []
    for s in range(n_subjects):
        for c in rng.choice(7, size=rng.integers(1, 7), replace=False):
            subjects.append(f"S{s:03d}")
            labels.append(int(c))
    return subjects, np.array(labels)


def test_no_subject_in_two_folds():
    subjects, labels = subjects_and_labels()
    folds = make_folds(subjects, labels, 10, seed=0)
    for s in set(subjects):
        assert len({f for f, subj in zip(folds, subjects) if subj == s}) == 1
    assert set(folds) == set(range(10))


def test_folds_are_deterministic_per_seed():
    subjects, labels = subjects_and_labels()
    assert np.array_equal(make_folds(subjects, labels, 10, 1), make_folds(subjects, labels, 10, 1))
    assert not np.array_equal(make_folds(subjects, labels, 10, 1), make_folds(subjects, labels, 10, 2))


def test_folds_are_balanced_by_class_as_far_as_subjects_allow():
    subjects = [f"S{i:03d}" for i in range(70)]
    labels = np.array([i % 7 for i in range(70)])  # one video per subject: perfect balance possible
    folds = make_folds(subjects, labels, 10, seed=0)
    for f in range(10):
        assert sorted(Counter(labels[folds == f]).values()) == [1] * 7


def test_fewer_subjects_than_folds():
    folds = make_folds(["a", "a", "b", "c"], np.array([0, 1, 0, 1]), 10, seed=0)
    assert len(set(folds)) == 3


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    run("synth", "--out", str(out), "--subjects", "3", "--seed", "5", "--quiet")
    return out


def run(*args, cwd=None):
    p = subprocess.run([sys.executable, "-m", "training", *args], capture_output=True, text=True, cwd=cwd, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    return p


def test_synth_command_writes_the_ck_layout(tiny_set):
    assert (tiny_set / "cohn-kanade-images").is_dir() and (tiny_set / "Emotion").is_dir() and (tiny_set / "Landmarks").is_dir()


def test_cv_command_writes_results_table_and_figures(tiny_set, tmp_path):
    out = tmp_path / "run"
    run("cv", "--data", str(tiny_set), "--out", str(out), "--variant", "all", "--folds", "3", "--epochs", "1",
        "--cache", str(tmp_path / "cache"), "--quiet")
    results = json.loads((out / "results.json").read_text())
    assert results["folds"] == 3
    assert set(results["variants"]) == {"convlstm", "convlstm_ram", "econvlstm", "econvlstm_ram"}
    for r in results["variants"].values():
        assert 0 <= r["video_accuracy"] <= 1 and 0 <= r["clip_accuracy"] <= 1
        assert set(r["per_class_recall"]) == set(r["classes"]) and len(r["classes"]) == 7
        cm = np.array(r["confusion"])
        assert cm.shape == (7, 7) and cm.sum() == results["data"]["videos"]
        assert r["video_accuracy"] == pytest.approx(np.trace(cm) / cm.sum())
    table = (out / "table.md").read_text()
    assert "Enhanced ConvLSTM + RAM" in table and "95.11 %" in table
    for png in ("confusion.png", "attention.png"):
        assert (out / png).read_bytes().startswith(b"\x89PNG")


def test_train_command_writes_a_servable_checkpoint(tiny_set, tmp_path):
    from training.checkpoint import load_checkpoint

    out = tmp_path / "ckpt"
    run("train", "--data", str(tiny_set), "--out", str(out), "--epochs", "1", "--cache", str(tmp_path / "cache"), "--quiet", "--seed", "3")
    model, config = load_checkpoint(out)
    assert config["seed"] == 3 and "python -m training train" in config["command"]
    assert config["model"]["variant"] == "econvlstm_ram" and config["classes"][4] == "happy"
    card = (out / "MODEL_CARD.md").read_text()
    assert config["weights_sha256"] in card and "Reproduce" in card and "Design decisions" in card


def test_cv_adds_variants_to_a_run_of_the_same_experiment(tiny_set, tmp_path):
    out = tmp_path / "run"
    common = ["--data", str(tiny_set), "--out", str(out), "--folds", "3", "--epochs", "1", "--cache", str(tmp_path / "c"), "--quiet"]
    run("cv", *common, "--variant", "econvlstm")
    first = json.loads((out / "results.json").read_text())["variants"]["econvlstm"]
    run("cv", *common, "--variant", "convlstm")
    results = json.loads((out / "results.json").read_text())
    assert list(results["variants"]) == ["convlstm", "econvlstm"]  # Table 1 order, both kept
    assert results["variants"]["econvlstm"] == first
    run("cv", *common[:-3], "--epochs", "2", "--cache", str(tmp_path / "c"), "--quiet", "--variant", "convlstm")
    assert list(json.loads((out / "results.json").read_text())["variants"]) == ["convlstm"]  # another recipe: replaced


def test_card_adds_metrics_without_touching_the_weights(tiny_set, tmp_path):
    from training.checkpoint import load_checkpoint

    out = tmp_path / "ckpt"
    run("train", "--data", str(tiny_set), "--out", str(out), "--epochs", "1", "--cache", str(tmp_path / "c"), "--quiet",
        "--licence", "Faces: somebody, CC BY 4.0")
    before = (out / "model.safetensors").read_bytes()
    run("card", str(out), "--metric", "london_heldout_accuracy=0.97", "--limits", "Misreads 1 of 21 calm faces.")
    _, config = load_checkpoint(out)  # still loads: the sha256 still matches
    assert config["metrics"]["london_heldout_accuracy"] == "0.97"
    card = (out / "MODEL_CARD.md").read_text()
    assert "london_heldout_accuracy: 0.97" in card and "CC BY 4.0" in card
    assert config["limits"] == "Misreads 1 of 21 calm faces." and card.rstrip().endswith("Misreads 1 of 21 calm faces.")
    assert (out / "model.safetensors").read_bytes() == before


def test_first_folds_runs_a_cheaper_comparison_on_the_same_split(tiny_set, tmp_path):
    out = tmp_path / "run"
    common = ["--data", str(tiny_set), "--out", str(out), "--folds", "3", "--epochs", "1", "--cache", str(tmp_path / "c"), "--quiet"]
    run("cv", *common, "--variant", "econvlstm_ram")
    full = json.loads((out / "results.json").read_text())
    run("cv", *common, "--variant", "convlstm_ram", "--first-folds", "1")
    results = json.loads((out / "results.json").read_text())
    part = results["variants"]["convlstm_ram"]
    assert part["folds_run"] == 1 and results["variants"]["econvlstm_ram"]["folds_run"] == 3
    assert sum(map(sum, part["confusion"])) == results["fold_videos"][0] < full["data"]["videos"]  # only fold 1 tested
    table = (out / "table.md").read_text()
    assert "| 1 of 3 |" in table and "folds 1 to 1" in table
    assert (out / "attention.png").read_bytes() and (out / "attention-convlstm_ram.png").is_file()  # the first figure kept
