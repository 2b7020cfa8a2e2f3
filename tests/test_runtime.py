"""The CPU's inference runtime (training/runtime.py): ONNX Runtime gives PyTorch's answers, on real faces.

PyTorch (fp32) is the reference: the same clip labels and the same answer, probabilities and attention
maps within 1e-3, the detector's faces within a small fraction of a pixel. The exports these tests load
are made once into the cache (RAMFER_CACHE or ~/.cache/ramfer) when it has none.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")

from service.pipeline import Predictor, analyse_video
from service.settings import Settings
from training.clips import clip_indices
from training.data import preprocess_video_file
from training.faces import to_gray
from training.runtime import FOLDER, RuntimeUnavailable, export_network, network_files, wants_onnx

TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def astronaut(tmp_path_factory):
    from videos import astronaut_frames, write_video

    frames = astronaut_frames(40)
    return write_video(tmp_path_factory.mktemp("runtime") / "astronaut.mp4", frames), frames


@pytest.fixture(scope="module")
def predictors(model_dir):
    """The served checkpoint on each runtime, at temperature 1 (the network's own probabilities)."""
    torch_p, onnx_p = Predictor(model_dir, runtime="torch"), Predictor(model_dir, runtime="onnx")
    assert (torch_p.runtime, onnx_p.runtime) == ("torch", "onnx")
    assert (torch_p.detector.net.runtime, onnx_p.detector.net.runtime) == ("torch", "onnx")
    for p in (torch_p, onnx_p):
        p.temperature = 1.0
    return torch_p, onnx_p


def test_the_network_gives_pytorchs_probabilities_and_maps_on_a_real_face(predictors, astronaut):
    reference, fast = predictors
    crops = preprocess_video_file(astronaut[0], reference.crop)
    clips = crops[clip_indices(len(crops))]
    p_ref, m_ref = reference.predict(clips)
    p_fast, m_fast = fast.predict(clips)
    assert len(clips) >= 10
    np.testing.assert_array_equal(p_fast.argmax(1), p_ref.argmax(1))
    np.testing.assert_allclose(p_fast, p_ref, atol=TOLERANCE)
    assert m_ref is not None and m_fast.shape == m_ref.shape
    np.testing.assert_allclose(m_fast, m_ref, atol=TOLERANCE)


def test_a_video_gets_the_same_answer_on_either_runtime(predictors, astronaut, tmp_path, model_dir):
    """The whole pipeline (detector, tracking, crops, shared frame features, clips) on each runtime."""
    results = [
        analyse_video(
            astronaut[0], p, Settings(model_dir=model_dir, storage_dir=tmp_path), out_dir=tmp_path / p.runtime
        )
        for p in predictors
    ]
    reference, fast = results
    assert fast["expression"] == reference["expression"] and fast["votes"] == reference["votes"]
    assert [c["label"] for c in fast["clips"]] == [c["label"] for c in reference["clips"]]
    for a, b in zip(fast["clips"], reference["clips"]):
        np.testing.assert_allclose(list(a["probabilities"].values()), list(b["probabilities"].values()), atol=TOLERANCE)


# End to end, a clip's probabilities may differ by more than the network's own 1e-3: the detector's
# landmarks differ by up to ~0.01 px where a candidate face scores near its 0.6 threshold on one runtime
# and not the other (weighted NMS then averages one box more), which moves a few crop pixels by one gray
# level; the network is that sensitive to its input. Measured: 0.011 on the two-person video below.
PIPELINE_TOLERANCE = 0.02


def test_two_real_people_get_the_same_answers_on_either_runtime(predictors, people_videos, tmp_path, model_dir):
    results = [
        analyse_video(
            people_videos["side"], p, Settings(model_dir=model_dir, storage_dir=tmp_path), out_dir=tmp_path / p.runtime
        )
        for p in predictors
    ]
    reference, fast = results
    assert len(fast["people"]) == len(reference["people"]) == 2
    for a, b in zip(fast["people"], reference["people"]):
        assert a["expression"] == b["expression"]
        assert [c["label"] for c in a["clips"]] == [c["label"] for c in b["clips"]]
        for ca, cb in zip(a["clips"], b["clips"]):
            np.testing.assert_allclose(
                list(ca["probabilities"].values()), list(cb["probabilities"].values()), atol=PIPELINE_TOLERANCE
            )


# int8 convolutions are not fp32's to 1e-3: nearly the same answers are what is asked of them (docs/performance.md,
# "int8 weights": 62 / 64 held-out talking videos, 99.2 % of clip labels; RAMFER_INFERENCE_INT8 is off by default).
INT8_CLIP_LABELS = 0.9


def test_int8_gives_fp32s_answers_on_real_faces(predictors, astronaut, people_videos, tmp_path, model_dir):
    """The served checkpoint's int8 exports (shipped beside its fp32 ones) through the whole pipeline: every
    person's answer as fp32's, and nearly every clip label."""
    fp32 = predictors[1]
    int8 = Predictor(model_dir, runtime="onnx", int8=True)
    int8.temperature = 1.0
    assert int8.runtime == "onnx int8" and not int8.bf16
    for video in (astronaut[0], people_videos["side"]):
        results = [
            analyse_video(video, p, Settings(model_dir=model_dir, storage_dir=tmp_path), out_dir=tmp_path / name)
            for p, name in ((fp32, "fp32"), (int8, "int8"))
        ]
        reference, quantised = ([c["label"] for p in r["people"] for c in p["clips"]] for r in results)
        assert [p["expression"] for p in results[1]["people"]] == [p["expression"] for p in results[0]["people"]]
        assert len(quantised) == len(reference) >= 10
        assert np.mean([a == b for a, b in zip(quantised, reference)]) >= INT8_CLIP_LABELS


def test_without_int8_exports_int8_runs_fp32(tmp_path, model_dir):
    """A checkpoint without int8 exports (they are never made at load: they need faces to calibrate on) runs
    its fp32 graphs, whatever RAMFER_INFERENCE_INT8 says."""
    own = tmp_path / "own"
    shutil.copytree(model_dir, own, ignore=shutil.ignore_patterns("*-int8.onnx"))
    assert Predictor(own, runtime="onnx", int8=True).runtime == "onnx"


def test_the_detector_finds_the_same_faces_on_either_runtime(predictors, astronaut):
    """Whole frames (192 px), regions around the face (128 px) and tiles: boxes and landmarks within 0.01 px."""
    reference, fast = (p.detector for p in predictors)
    grays = [to_gray(f) for f in astronaut[1][:16]]
    near = reference.detect_whole(grays[:1])[0]
    for search in (lambda d: d.whole_faces(grays), lambda d: d.detect_people(grays, [near])):
        ref, got = search(reference), search(fast)
        assert [len(f) for f in got] == [len(f) for f in ref] and all(len(f) == 1 for f in ref)
        np.testing.assert_allclose(np.stack([f[0] for f in got]), np.stack([f[0] for f in ref]), atol=1e-2)
    small = [g[100:260, 200:360] for g in grays[:4]]  # under 160 px: framed and searched whole
    for a, b in zip(fast.whole_faces(small), reference.whole_faces(small)):
        assert len(a) == len(b)
        for ra, rb in zip(a, b):
            np.testing.assert_allclose(ra, rb, atol=1e-2)


def test_mirror_averaging_runs_on_onnx_too(model_dir, astronaut):
    reference = Predictor(model_dir, runtime="torch", flip_average=True)
    fast = Predictor(model_dir, runtime="onnx", flip_average=True)
    crops = preprocess_video_file(astronaut[0], reference.crop)
    clips = crops[clip_indices(len(crops))][:6]
    (p_ref, m_ref), (p_fast, m_fast) = reference.predict(clips), fast.predict(clips)
    np.testing.assert_allclose(p_fast, p_ref, atol=TOLERANCE)
    np.testing.assert_allclose(m_fast, m_ref, atol=TOLERANCE)


def test_export_command_writes_beside_the_checkpoint_and_a_read_only_install_loads_it(
    model_dir, tmp_path, monkeypatch, caplog
):
    """`python -m training export --model DIR` writes DIR/onnx/; a Predictor then loads it there without
    writing anything (the cache unusable). Without it and without a usable cache, auto runs PyTorch and
    onnx refuses."""
    from training.__main__ import main

    ckpt = tmp_path / "ckpt"
    shutil.copytree(model_dir, ckpt, ignore=shutil.ignore_patterns(FOLDER))  # a checkpoint without its exports
    unusable = tmp_path / "not-a-folder"
    unusable.write_text("")  # a file where the cache would be: nothing can be made there
    monkeypatch.setenv("RAMFER_CACHE", str(unusable))

    bare = Predictor(ckpt, runtime="auto")
    assert bare.runtime == "torch" and bare.detector.net.runtime == "torch"
    assert "runs on PyTorch: its ONNX export cannot be made" in caplog.text
    with pytest.raises(RuntimeUnavailable, match="cannot be made"):
        Predictor(ckpt, runtime="onnx")

    main(["export", "--model", str(ckpt)])
    key_file = next((ckpt / FOLDER).glob("frame-*.onnx"))
    good = key_file.read_bytes()
    key_file.write_bytes(b"not an onnx file")  # a file ONNX Runtime cannot load: auto runs PyTorch, onnx refuses
    assert Predictor(ckpt, runtime="auto").runtime == "torch"
    assert "its ONNX export cannot be loaded" in caplog.text
    with pytest.raises(RuntimeUnavailable, match="cannot be loaded"):
        Predictor(ckpt, runtime="onnx")
    key_file.write_bytes(good)
    written = sorted(p.name for p in (ckpt / FOLDER).iterdir())
    assert len(written) == 3 and all(name.endswith(".onnx") for name in written)
    for path in [ckpt, *ckpt.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    before = sorted(ckpt.rglob("*"))
    try:
        loaded = Predictor(ckpt, runtime="auto")
        assert sorted(ckpt.rglob("*")) == before  # nothing written (root ignores the modes above)
        assert loaded.runtime == "onnx" and loaded.detector.net.runtime == "onnx"
        clips = np.random.default_rng(0).integers(0, 256, (2, 8, 48, 48), dtype=np.uint8)
        np.testing.assert_allclose(loaded.predict(clips)[0], bare.predict(clips)[0], atol=TOLERANCE)
    finally:
        for path in [ckpt, *ckpt.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)


def test_a_network_without_attention_exports_too(tmp_path):
    """Any checkpoint's network: here the plain ConvLSTM, which has no RAM and so no maps."""
    from training.model import ModelConfig, build_model
    from training.runtime import OnnxNetwork

    torch.manual_seed(0)
    model = build_model(ModelConfig(variant="convlstm", num_classes=7)).eval()
    worst = export_network(model, tmp_path, "plain")
    assert all(w is not None and w <= TOLERANCE for w in worst.values())
    assert all((tmp_path / name).is_file() for name in network_files("plain"))
    fast = OnnxNetwork(tmp_path, "plain", model)
    feats = model.frame_features(torch.randint(0, 256, (16, 1, 48, 48), dtype=torch.uint8)).detach()
    clips = torch.stack([feats[:8], feats[8:]])
    out = fast.forward_features(clips)
    assert out.attention is None
    np.testing.assert_allclose(
        out.logits.numpy(), model.forward_features(clips).logits.detach().numpy(), atol=TOLERANCE
    )


def test_auto_leaves_batches_of_clips_to_pytorch_where_bf16_runs_natively(model_dir, astronaut):
    """Where bf16 autocast is native (INFERENCE_BF16, the default), PyTorch's bf16 recurrence is the faster
    on batches of clips; the per-frame stage, a few clips at a time and the detector run on ONNX Runtime.
    Elsewhere all of it does. Its answers are the bf16 path's, within bf16's own rounding."""
    from training.device import bf16_ok
    from training.runtime import BF16_CLIPS_FROM

    native = bf16_ok(torch.device("cpu"))
    p = Predictor(model_dir, bf16=True, runtime="auto")
    assert (p.runtime, p.bf16, p.detector.net.runtime) == (
        (f"onnx (torch for {BF16_CLIPS_FROM}+ clips a batch)", True, "onnx") if native else ("onnx", False, "onnx")
    )
    forced = Predictor(model_dir, bf16=True, runtime="onnx")
    assert (forced.runtime, forced.bf16) == ("onnx", False)
    if native:
        bf16, fp32 = Predictor(model_dir, bf16=True, runtime="torch"), Predictor(model_dir, runtime="torch")
        crops = preprocess_video_file(astronaut[0], bf16.crop)
        clips = crops[clip_indices(len(crops))]
        (p_mixed, m_mixed), (p_bf16, _) = p.predict(clips), bf16.predict(clips)
        assert (p_mixed.argmax(1) == p_bf16.argmax(1)).mean() >= 0.95
        np.testing.assert_allclose(p_mixed, p_bf16, atol=0.05)
        assert m_mixed is not None
        few = clips[: BF16_CLIPS_FROM - 1]  # on ONNX Runtime, from the features bf16 keeps
        np.testing.assert_array_equal(p.predict(few)[0].argmax(1), fp32.predict(few)[0].argmax(1))
        np.testing.assert_allclose(p.predict(few)[0], fp32.predict(few)[0], atol=0.05)


def test_what_runs_where():
    assert wants_onnx("auto", torch.device("cpu")) and wants_onnx("onnx", torch.device("cpu"))
    assert not wants_onnx("torch", torch.device("cpu"))
    assert not wants_onnx("auto", torch.device("cuda"))  # the GPU path stays PyTorch
    with pytest.raises(RuntimeUnavailable, match="CPU"):
        wants_onnx("onnx", torch.device("cuda"))
    with pytest.raises(ValueError, match="runtime"):
        wants_onnx("tensorrt", torch.device("cpu"))
    with pytest.raises(ValueError, match="inference_runtime"):
        Settings(inference_runtime="tensorrt")
    assert (
        Settings.model_fields["inference_runtime"].default == "auto"
    )  # the suite itself runs RAMFER_INFERENCE_RUNTIME=torch (conftest)


def test_without_the_onnx_extra_auto_runs_pytorch_and_onnx_refuses(monkeypatch):
    """Where onnxruntime cannot be imported (a platform without its wheels): auto runs PyTorch, onnx says why it
    cannot start."""
    import sys

    from training.runtime import RuntimeUnavailable, wants_onnx

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` raises ImportError
    assert wants_onnx("auto", torch.device("cpu")) is False
    with pytest.raises(RuntimeUnavailable, match="onnxruntime cannot be imported"):
        wants_onnx("onnx", torch.device("cpu"))


def test_the_package_carries_the_served_checkpoints_current_exports():
    """A plain install runs the CPU's fast path with nothing but onnxruntime: the served checkpoint's exports
    are in the package, and they are the ones this code makes for these weights (their names carry the
    weights' hash and the code's). After a change to training/model.py or training/detector.py, or new
    weights: `python -m training export --model training/models/default`."""
    from pathlib import Path

    from training import detector
    from training.bundled import DETECTOR_WEIGHTS, SERVED_CHECKPOINT
    from training.checkpoint import read_config
    from training.runtime import detector_file, detector_key, int8_files, network_key

    key = network_key(read_config(SERVED_CHECKPOINT))
    wanted = {
        *network_files(key),
        *int8_files(key),  # what RAMFER_INFERENCE_INT8=true runs: `export --int8 FERPLUS/FER2013Valid`
        detector_file(detector_key(DETECTOR_WEIGHTS, Path(detector.__file__))),
    }
    shipped = {f.name for f in (SERVED_CHECKPOINT / FOLDER).glob("*.onnx")}
    assert shipped == wanted, (
        "stale exports: run python -m training export --model training/models/default --int8 FERPLUS/FER2013Valid"
    )
