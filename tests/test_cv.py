"""Folds, and the training commands end to end on a tiny synthetic set."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from training.cv import make_folds

ROOT = Path(__file__).resolve().parents[1]


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


def test_summary_scores_each_fold_and_the_spread_of_their_accuracies():
    from training.cv import summarize
    from training.data import CLASSES, Dataset, Video
    from training.train import VideoPrediction

    def pred(label, clip_labels):
        return VideoPrediction(label, np.zeros(7), np.zeros((len(clip_labels), 7)), np.array(clip_labels), None)

    frames = np.zeros((10, 48, 48), np.uint8)
    videos = [
        Video("a", "a/1", 0, frames),
        Video("a", "a/2", 4, frames),
        Video("b", "b/1", 4, frames),
        Video("b", "b/2", 6, frames),
        Video("c", "c/1", 0, frames),
    ]
    folds = np.array([0, 0, 1, 1, 2])
    preds = [pred(0, [0, 0, 1]), pred(4, [4]), pred(4, [4, 4, 6, 6]), pred(0, [6, 0]), None]  # fold 3 not run
    s = summarize(Dataset(videos, CLASSES, "ckplus", "tiny"), preds, folds)
    assert s["folds_run"] == 2 and s["fold_videos"] == [2, 2] and s["videos"] == 4
    assert [f["video_accuracy"] for f in s["per_fold"]] == s["fold_video_accuracy"] == [1.0, 0.5]
    assert [f["clip_accuracy"] for f in s["per_fold"]] == [pytest.approx(3 / 4), pytest.approx(3 / 6)]
    assert s["video_accuracy"] == 0.75 and s["clip_accuracy"] == pytest.approx(6 / 10)  # clips alone vs the vote
    assert s["video_accuracy_over_folds"] == {
        "mean": 0.75,
        "std": pytest.approx(np.std([1, 0.5], ddof=1)),
        "min": 0.5,
        "max": 1.0,
    }
    second = s["per_fold"][1]
    assert (
        second["fold"] == 2
        and second["per_class_recall"]["happy"] == 1.0
        and second["per_class_recall"]["surprise"] == 0.0
    )
    assert second["per_class_recall"]["anger"] is None and second["confusion"][6][0] == 1
    assert np.array_equal(np.array(s["confusion"]), sum(np.array(f["confusion"]) for f in s["per_fold"]))


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    run("synth", "--out", str(out), "--subjects", "3", "--seed", "5", "--quiet")
    return out


def run(*args, cwd=None, timeout=900):
    """`python -m training ...`, its log lines (folds, epochs) shown live as it runs."""
    from conftest import say

    say(f"python -m training {' '.join(a if len(a) < 40 else '...' + a[-30:] for a in args)}")
    proc = subprocess.Popen(
        [sys.executable, "-m", "training", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd
    )
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            for level in (" INFO ", " WARNING "):
                if level in line:  # a log line: shown without its timestamp
                    say((level.strip() + " " + line.split(level, 1)[1].rstrip())[:160])
                    break
    finally:
        timer.cancel()
        proc.wait()
    output = "".join(lines)
    assert proc.returncode == 0, output[-3000:]
    return subprocess.CompletedProcess(proc.args, proc.returncode, output, output)


def test_synth_command_writes_the_ck_layout(tiny_set):
    assert (
        (tiny_set / "cohn-kanade-images").is_dir()
        and (tiny_set / "Emotion").is_dir()
        and (tiny_set / "Landmarks").is_dir()
    )


def test_cv_command_writes_results_table_and_figures(tiny_set, tmp_path):
    out = tmp_path / "run"
    run(
        "cv",
        "--data",
        str(tiny_set),
        "--out",
        str(out),
        "--variant",
        "all",
        "--folds",
        "3",
        "--epochs",
        "1",
        "--cache",
        str(tmp_path / "cache"),
        "--quiet",
    )
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
    from training.__main__ import TRAIN_JUDGED
    from training.checkpoint import load_checkpoint

    out = tmp_path / "ckpt"
    p = run(
        "train",
        "--data",
        str(tiny_set),
        "--out",
        str(out),
        "--epochs",
        "1",
        "--cache",
        str(tmp_path / "cache"),
        "--quiet",
        "--seed",
        "3",
    )
    assert "INFO training.train: epoch 1/1: loss" in p.stdout  # without the bar, each epoch is a log line (shown live)
    _model, config = load_checkpoint(out)
    assert config["seed"] == 3 and "python -m training train" in config["command"]
    assert config["model"]["variant"] == "econvlstm_ram" and config["classes"][4] == "happy"
    assert config["metrics"]["train_videos_judged"] == min(TRAIN_JUDGED, config["data"]["videos"])
    assert 0 <= config["metrics"]["train_video_accuracy"] <= 1 and config["train"]["epochs_run"] == 1
    card = (out / "MODEL_CARD.md").read_text()
    assert config["weights_sha256"] in card and "Reproduce" in card and "Design decisions" in card


def test_a_resumable_run_killed_mid_way_ends_as_an_uninterrupted_one(tiny_set, tmp_path):
    """`train --resumable` killed (SIGKILL, no chance to clean up) after an epoch, then the same command
    again: it goes on from the saved epoch and writes the weights of a run never stopped; a state file
    of another recipe is refused, not continued."""
    from safetensors.torch import load_file

    from training.__main__ import TRAINING_STATE

    common = ["--data", str(tiny_set), "--epochs", "3", "--cache", str(tmp_path / "cache"), "--quiet", "--seed", "3"]
    run("train", *common, "--out", str(tmp_path / "whole"), "--resumable")
    assert not (tmp_path / "whole" / TRAINING_STATE).exists()  # removed once the checkpoint is written

    out = tmp_path / "stopped"
    proc = subprocess.Popen(
        [sys.executable, "-m", "training", "train", *common, "--out", str(out), "--resumable"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    for line in proc.stdout:
        if "epoch 2/3" in line:
            proc.kill()
            break
    proc.wait(timeout=60)
    assert proc.returncode != 0 and (out / TRAINING_STATE).is_file() and not (out / "model.safetensors").exists()

    refused = subprocess.run(
        [sys.executable, "-m", "training", "train", *common, "--lr", "0.01", "--out", str(out), "--resumable"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert refused.returncode != 0 and "state of another run" in refused.stderr

    again = run("train", *common, "--out", str(out), "--resumable")
    assert re.search(r"going on from .*: [12] of 3 epochs done", again.stdout), again.stdout[-2000:]
    assert "epoch 3/3" in again.stdout and "epoch 1/3" not in again.stdout
    whole, resumed = load_file(tmp_path / "whole" / "model.safetensors"), load_file(out / "model.safetensors")
    assert whole.keys() == resumed.keys() and all(torch.equal(whole[k], resumed[k]) for k in whole)
    assert not (out / TRAINING_STATE).exists()


def test_train_with_another_input_size_is_served_at_that_size(tiny_set, tmp_path):
    """--input-size reaches the crops, the network and the checkpoint, and the service reads it back."""
    from videos import astronaut_frames, write_video

    from service.pipeline import Predictor, analyse_video
    from service.settings import Settings
    from training.checkpoint import load_checkpoint
    from training.data import preprocess_video_file

    out = tmp_path / "ckpt64"
    run(
        "train",
        "--data",
        str(tiny_set),
        "--out",
        str(out),
        "--epochs",
        "1",
        "--input-size",
        "64",
        "--cache",
        str(tmp_path / "cache"),
        "--quiet",
    )
    _model, config = load_checkpoint(out)
    assert config["crop"]["size"] == 64 and config["model"]["input_size"] == 64
    predictor = Predictor(out)
    assert predictor.crop.size == 64
    video = write_video(tmp_path / "astro.mp4", astronaut_frames(24))
    result = analyse_video(video, predictor, Settings(model_dir=out, storage_dir=tmp_path))
    assert result["expression"] in config["classes"] and len(result["clips"]) == (24 - 8) // 2 + 1
    assert preprocess_video_file(video, predictor.crop).shape[1:] == (64, 64)


def test_cv_adds_variants_to_a_run_of_the_same_experiment(tiny_set, tmp_path):
    out = tmp_path / "run"
    common = [
        "--data",
        str(tiny_set),
        "--out",
        str(out),
        "--folds",
        "3",
        "--epochs",
        "1",
        "--cache",
        str(tmp_path / "c"),
        "--quiet",
    ]
    run("cv", *common, "--variant", "econvlstm")
    record = json.loads((out / "results.json").read_text())
    first = record["variants"]["econvlstm"]
    assert record["train"]["min_steps"] == 0 and first["epochs_per_fold"] == [1, 1, 1]  # --epochs given: exactly that
    for newer in ("balance", "label_smoothing", "min_steps"):  # as a run folder of an older version recorded the recipe
        del record["train"][newer]
    (out / "results.json").write_text(json.dumps(record))
    run("cv", *common, "--variant", "convlstm")
    results = json.loads((out / "results.json").read_text())
    assert list(results["variants"]) == ["convlstm", "econvlstm"]  # Table 1 order, both kept
    assert results["variants"]["econvlstm"] == first
    run("cv", *common[:-3], "--epochs", "2", "--cache", str(tmp_path / "c"), "--quiet", "--variant", "convlstm")
    assert list(json.loads((out / "results.json").read_text())["variants"]) == ["convlstm"]  # another recipe: replaced


def test_card_adds_metrics_without_touching_the_weights(tiny_set, tmp_path):
    from training.checkpoint import load_checkpoint

    out = tmp_path / "ckpt"
    run(
        "train",
        "--data",
        str(tiny_set),
        "--out",
        str(out),
        "--epochs",
        "1",
        "--cache",
        str(tmp_path / "c"),
        "--quiet",
        "--licence",
        "Faces: somebody, CC BY 4.0",
    )
    before = (out / "model.safetensors").read_bytes()
    run("card", str(out), "--metric", "london_heldout_accuracy=0.97", "--limits", "Misreads 1 of 21 calm faces.")
    _, config = load_checkpoint(out)  # still loads: the sha256 still matches
    assert config["metrics"]["london_heldout_accuracy"] == "0.97"
    card = (out / "MODEL_CARD.md").read_text()
    assert "london_heldout_accuracy: 0.97" in card and "CC BY 4.0" in card
    assert config["limits"] == "Misreads 1 of 21 calm faces." and card.rstrip().endswith("Misreads 1 of 21 calm faces.")
    assert (out / "model.safetensors").read_bytes() == before
    run("card", str(out), "--neutral-bias", "0.5", "--chosen-on", "FER+ Valid")  # the prior the service decides with
    _, config = load_checkpoint(out)
    assert config["decision"] == {"neutral_bias": 0.5, "chosen_on": "FER+ Valid"}
    assert "exp(0.5)" in (out / "MODEL_CARD.md").read_text()


def test_first_folds_runs_a_cheaper_comparison_on_the_same_split(tiny_set, tmp_path):
    out = tmp_path / "run"
    common = [
        "--data",
        str(tiny_set),
        "--out",
        str(out),
        "--folds",
        "3",
        "--epochs",
        "1",
        "--cache",
        str(tmp_path / "c"),
        "--quiet",
    ]
    run("cv", *common, "--variant", "econvlstm_ram")
    full = json.loads((out / "results.json").read_text())
    run("cv", *common, "--variant", "convlstm_ram", "--first-folds", "1")
    results = json.loads((out / "results.json").read_text())
    part = results["variants"]["convlstm_ram"]
    assert part["folds_run"] == 1 and results["variants"]["econvlstm_ram"]["folds_run"] == 3
    assert sum(map(sum, part["confusion"])) == results["fold_videos"][0] < full["data"]["videos"]  # only fold 1 tested
    table = (out / "table.md").read_text()
    assert "| 1 of 3 |" in table and "folds 1 to 1" in table
    assert (out / "attention.png").read_bytes() and (
        out / "attention-convlstm_ram.png"
    ).is_file()  # the first figure kept


def test_cv_from_the_served_weights_records_where_it_started(tiny_set, tmp_path):
    """A bare --init starts every fold from training/models/default: on a CK+-layout set of the paper's 7
    classes the checkpoint's neutral is dropped and nothing starts fresh; the records say so, and
    a run from scratch in the same folder is another experiment. Asked for no crops, the run makes the
    checkpoint's (the served model's are aligned; a run from scratch makes box crops)."""
    from training.checkpoint import SERVED_CHECKPOINT, crop_config, read_config

    out = tmp_path / "run"
    theirs = crop_config(read_config(SERVED_CHECKPOINT))
    common = [
        "--data",
        str(tiny_set),
        "--out",
        str(out),
        "--folds",
        "2",
        "--first-folds",
        "1",
        "--epochs",
        "1",
        "--cache",
        str(tmp_path / "c"),
        "--quiet",
    ]
    p = run("cv", *common, "--init")
    results = json.loads((out / "results.json").read_text())
    assert results["crop"] == theirs.to_dict() and theirs.align
    assert "--init: making 48 px aligned crops" in p.stdout
    assert results["init"] == {
        "checkpoint": str(SERVED_CHECKPOINT),
        "sha256": read_config(SERVED_CHECKPOINT)["weights_sha256"],
    }
    r = results["variants"]["econvlstm_ram"]
    assert r["init"]["fresh"] == [] and r["init"]["classes_dropped"] == ["neutral"] and r["init"]["loaded"] > 0
    assert "econvlstm_ram: started from" in p.stdout and "dropped: neutral" in p.stdout
    assert r["folds_run"] == len(r["per_fold"]) == 1 and r["video_accuracy_over_folds"]["std"] is None
    table = (out / "table.md").read_text()
    assert "Not the paper's protocol" in table and "dropped: neutral" in table and "Per-class recall" in table

    run("cv", *common)
    results = json.loads((out / "results.json").read_text())
    assert results["init"] is None and results["variants"]["econvlstm_ram"]["init"] is None
    assert results["crop"]["align"] is False
    assert "Not the paper's protocol" not in (out / "table.md").read_text()


@pytest.fixture(scope="module")
def tiny_folders(tmp_path_factory):
    """Class folders of drawn faces' videos (as test_data's): two people, happy, surprise and neutral."""
    from training.synthesis.drawn import render_sequence
    from training.synthesis.drawn_face import make_subject
    from training.video import write_video

    root = tmp_path_factory.mktemp("folders")
    for s, person in enumerate(("alice", "bob")):
        rng = np.random.default_rng(s)
        subject = make_subject(rng)
        for cls in ("happy", "surprise", "neutral"):
            frames, _ = render_sequence(subject, cls, 12, rng, size=(320, 240))
            (root / cls).mkdir(exist_ok=True)
            write_video(root / cls / f"{person}_1.mp4", frames)
    return root


def test_train_from_a_7_class_checkpoint_on_class_folders(tiny_folders, tmp_path):
    """--init onto --neutral's 8 classes: neutral starts fresh, and config.json and the model card say
    so. --lr 0 leaves the weights where --init put them, so the checkpoint shows what was loaded."""
    import torch
    from safetensors.torch import load_file

    from training.checkpoint import SERVED_CHECKPOINT, load_checkpoint
    from training.data import CLASSES

    seven = SERVED_CHECKPOINT.parent / "synthetic-7class"
    out = tmp_path / "ckpt"
    run(
        "train",
        "--data",
        str(tiny_folders),
        "--neutral",
        "--init",
        str(seven),
        "--out",
        str(out),
        "--epochs",
        "1",
        "--lr",
        "0",
        "--cache",
        str(tmp_path / "c"),
        "--quiet",
    )
    model, config = load_checkpoint(out)
    init = config["init"]
    assert init["checkpoint"] == str(seven) and init["fresh"] == [] and init["classes_fresh"] == ["neutral"]
    theirs = load_file(seven / "model.safetensors")
    ours = config["classes"].index("happy")
    assert torch.equal(model.fc.weight[ours], theirs["fc.weight"][CLASSES.index("happy")])
    assert torch.equal(model.ram.conv_s.weight[:7, :7], theirs["ram.conv_s.weight"])
    assert "fresh: neutral" in (out / "MODEL_CARD.md").read_text()

    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "training",
            "train",
            "--data",
            str(tiny_folders),
            "--init",
            str(seven),
            "--input-size",
            "64",
            "--out",
            str(tmp_path / "x"),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode != 0 and "--init:" in p.stderr and "--input-size 48" in p.stderr
    assert not (tmp_path / "x").exists()


def fake_london(root, n=10):
    """The London set's file names (empty files): enough for its identities and folds."""
    for d in ("neutral", "smiling"):
        (root / d).mkdir(parents=True)
    for i in range(n):
        for name in (f"neutral/{i:03d}_03.jpg", f"neutral/{i:03d}_03.tem", f"smiling/{i:03d}_08.jpg"):
            (root / name).touch()
    return root


def test_london_folds_hold_out_every_person_once(tmp_path):
    from training.synthesis.london import list_identities, london_face_id, split_identities

    ids = list_identities(fake_london(tmp_path / "london", 12))
    held = [split_identities(ids, k)[1] for k in range(5)]
    assert held[0] == ids[::5]  # fold 0 is the served checkpoint's split, as before folds existed
    assert sorted(i for h in held for i in h) == ids
    for k, h in enumerate(held):
        assert set(split_identities(ids, k)[0]).isdisjoint(h)
    with pytest.raises(ValueError, match="fold"):
        split_identities(ids, 5)
    assert london_face_id("photoreal:L017") == "017" and london_face_id("L003") == "003"
    assert london_face_id("synth40:S005") is None and london_face_id("LEO") is None


@pytest.fixture(scope="module")
def london_pack(tiny_set, tmp_path_factory):
    """A pack whose subjects are London people 000, 001, 002 (the tiny drawn set's three), and a
    stand-in London set of ten people for its folds."""
    from training.data import CLASSES_WITH_NEUTRAL, Dataset, Video, load_dataset, save_pack
    from training.faces import CropConfig

    tmp = tmp_path_factory.mktemp("london-pack")
    loaded = load_dataset(tiny_set, cache_dir=tmp / "c", classes=CLASSES_WITH_NEUTRAL, progress=False)
    face_id = {s: f"L{i:03d}" for i, s in enumerate(sorted(set(loaded.subjects)))}
    videos = [Video(face_id[v.subject], v.name, v.label, v.frames) for v in loaded.videos]
    pack = save_pack(Dataset(videos, loaded.classes, loaded.layout, "tiny"), tmp / "tiny.npz", CropConfig())
    return pack, fake_london(tmp / "london"), [v.subject for v in videos]


def test_train_on_a_pack_leaving_out_a_london_fold(london_pack, tmp_path):
    from training.checkpoint import load_checkpoint

    pack, london, subjects = london_pack
    out = tmp_path / "ckpt"
    run(
        "train",
        "--data",
        str(pack),
        "--neutral",
        "--london-fold",
        "1",
        "--london",
        str(london),
        "--out",
        str(out),
        "--epochs",
        "1",
        "--quiet",
    )
    _, config = load_checkpoint(out)
    kept = sum(s != "L001" for s in subjects)  # fold 1 of ids 000..009 is 001 and 006
    assert 0 < kept < len(subjects) and config["data"]["videos"] == kept
    assert config["data"]["root"].endswith("less London fold 1") and config["classes"][-1] == "neutral"
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "training",
            "train",
            "--data",
            str(pack),
            "--out",
            str(tmp_path / "x"),
            "--epochs",
            "1",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode != 0 and "packed for the classes" in p.stderr  # 8-class pack, 7-class run


def test_london_folds_trains_every_fold_side_by_side(london_pack, tmp_path):
    pack, london, subjects = london_pack
    out = tmp_path / "folds"
    p = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "london_folds.py"),
            "--pack",
            str(pack),
            "--london",
            str(london),
            "--folds",
            "2",
            "0",
            "--out",
            str(out),
            "--poll",
            "1",
            "--",
            "--epochs",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert {k: v["returncode"] for k, v in summary["folds"].items()} == {"2": 0, "0": 0}
    assert summary["extra_args"] == ["--epochs", "2", "--threads", str(max(1, (os.cpu_count() or 1) // 2))]
    for k, held in (("2", "L002"), ("0", "L000")):
        config = json.loads((out / f"fold{k}" / "config.json").read_text())
        assert config["data"]["videos"] == sum(s != held for s in subjects)


def test_london_folds_reads_the_progress_bar(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from london_folds import progress

    log = tmp_path / "fold1.log"
    assert progress(log) is None
    log.write_text(
        "INFO loaded\repochs:   0%|  | 0/30 [00:00<?, ?it/s]\repochs:  10%|# | 3/30 [00:39<05:51, 13.0s/it, acc=0.5]"
    )
    assert progress(log) == (3, 30, 351)
    log.write_text("epochs:  97%|#| 29/30 [1:02:03<1:02:10, 13.0s/it]")
    assert progress(log) == (29, 30, 3730)


def test_recipe_options_reach_results_and_the_model_card(tiny_set, tmp_path):
    """--balance and --label-smoothing are part of the recipe that results.json and the card record; the
    recipe study runs a variant once (a second call reads its results.json back), several at a time
    with --jobs (sharing one preprocessing cache), and tables them."""
    from training.checkpoint import load_checkpoint

    study = [
        sys.executable,
        str(ROOT / "benchmarks" / "recipe_study.py"),
        "--data",
        str(tiny_set),
        "--out",
        str(tmp_path / "study"),
        "--folds",
        "2",
        "--first-folds",
        "1",
        "--common-flags",
        f"--epochs 1 --cache {tmp_path / 'c'}",
    ]
    p = subprocess.run(
        [*study, "--jobs", "2", "default", "sampler", "smooth0.1"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=900,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    for name in ("default", "sampler", "smooth0.1"):  # run two at a time, each one's output in its log
        assert "econvlstm_ram fold 1/2:" in (tmp_path / "study" / f"{name}.log").read_text()
    for name, balance, eps in (("default", "loss", 0.0), ("sampler", "sampler", 0.0), ("smooth0.1", "loss", 0.1)):
        results = json.loads((tmp_path / "study" / name / "results.json").read_text())
        assert results["train"]["balance"] == balance and results["train"]["label_smoothing"] == eps
        assert results["variants"]["econvlstm_ram"]["folds_run"] == 1

    def study_rows(stdout):  # the study's table, printed last (each cv run prints its own tables before it)
        lines = stdout.splitlines()
        return lines[lines.index(next(x for x in lines if x.startswith("| variant |"))) + 2 :]

    rows = study_rows(p.stdout)
    assert (
        len(rows) == 3
        and "`--balance sampler`" in rows[1]
        and "`--label-smoothing 0.1`" in rows[2]
        and "| 1 of 2 |" in rows[0]
    )
    again = subprocess.run([*study, "sampler"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert again.returncode == 0 and "$ python" not in again.stdout  # read back, not rerun
    assert study_rows(again.stdout) == rows[1:2]

    # a variant stopped before its results.json (a lent machine's time ran out) is tabled from its log's fold lines
    (tmp_path / "study" / "lr1e-3.log").write_text(
        "INFO training.cv: econvlstm_ram fold 1/10: 29 test videos, video accuracy 0.897, clip accuracy 0.897\n"
        "epoch 3/30\nINFO training.cv: econvlstm_ram fold 2/10: 37 test videos, video accuracy 0.865, clip accuracy 0.865\n"
    )
    table = subprocess.run(
        [*study, "--table-only", "sampler", "lr1e-3", "epochs60"], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    stopped = study_rows(table.stdout)
    assert stopped[0] == rows[1] and len(stopped) == 2  # epochs60: neither results nor log, no row
    assert (
        stopped[1].startswith("| lr1e-3 | `--lr 1e-3` | 87.9 % (58 / 66) | 2 of 10, stopped |")
        and "| 26/29 32/37 |" in stopped[1]
    )

    out = tmp_path / "ckpt"
    run(
        "train",
        "--data",
        str(tiny_set),
        "--out",
        str(out),
        "--epochs",
        "1",
        "--cache",
        str(tmp_path / "c"),
        "--quiet",
        "--balance",
        "none",
        "--label-smoothing",
        "0.05",
    )
    _, config = load_checkpoint(out)
    assert config["train"]["balance"] == "none" and config["train"]["label_smoothing"] == 0.05
    assert '"balance": "none"' in (out / "MODEL_CARD.md").read_text()
