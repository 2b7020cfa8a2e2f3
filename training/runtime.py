"""The network and the face detector on ONNX Runtime: the CPU's fast path. PyTorch stays the
reference (training, the tests' comparisons) and the GPU path.

    module (PyTorch) -> ONNX export (made once, checked against PyTorch, kept) -> ONNX Runtime session

Why: on a CPU, eager PyTorch runs these small networks op by op (48 px crops through a recurrence
unrolled over 8 frames; BlazeFace's ~100 small convolutions at 128-192 px), and the work between ops
is a large share of their time; ONNX Runtime runs the whole graph at once, with its ops fused
(docs/performance.md measures both). The graphs are split as the service already splits the work:

    frame     (N, 1, S, S) uint8 crops -> per-frame features            ExpressionNet.frame_features
    clip      (B, 8, P, h, w) features -> logits (B, K), maps (B, 8, h', w')  ExpressionNet.forward_features
    blazeface (B, n, n) uint8 gray inputs -> scores (B, A), regressions (B, A, 16)  BlazeFaceFull on gray_input

N, B and the detector's n (192 for whole frames, 128 for regions) are free; the clip length is fixed
at CLIP_LENGTH. RAM's per-step scores, which only training's loss reads, are not exported. The network's
two graphs may also lie beside their fp32 files with int8 convolutions (`quantise_network`, calibrated
on real faces by `python -m training export --int8 DATA`; the served checkpoint ships them), which the
service runs where RAMFER_INFERENCE_INT8 is on (off by default).

Where an export is looked for: the folders the caller names (a checkpoint's `onnx/`, written by
`python -m training export --model DIR`), then the cache (`$RAMFER_CACHE` or ~/.cache/ramfer, its
`onnx/`), where one is made at load when no folder has it. A file's name carries a key made of the
weights' sha256, the network's config and the source of the module that defines the network, so an
export is never used with other weights or other code. Every export is compared with PyTorch on a
few batches before it is kept. `runtime` is "auto" (ONNX Runtime where the device is a CPU,
onnxruntime is installed and an export exists or can be made; else PyTorch, with a log line saying
why), "torch" or "onnx" (ONNX Runtime or an error).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from training.clips import CLIP_LENGTH

RUNTIMES = ("auto", "torch", "onnx")
EXPORT_FORMAT = 1  # part of every key: raised when what an export holds or how it is made changes
EXPORT_TOLERANCE = 1e-3  # largest difference from PyTorch an export may show on its check batches
FOLDER = "onnx"  # a checkpoint's exports: CHECKPOINT_DIR/onnx/

log = logging.getLogger(__name__)
T = TypeVar("T")


class RuntimeUnavailable(RuntimeError):
    """ONNX Runtime was asked for (runtime "onnx") and cannot be had: `problem` says why."""


def wants_onnx(runtime: str, device) -> bool:
    """Whether to try ONNX Runtime for a network on `device` (a torch.device). "onnx" where it cannot
    run raises RuntimeUnavailable; "auto" then answers False."""
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    if runtime == "torch":
        return False
    problem = None
    if torch.device(device).type != "cpu":
        problem = f"ONNX Runtime is the CPU's path; the device is {device}"  # CUDA keeps PyTorch (batches, bf16)
    else:
        try:
            import onnxruntime  # noqa: F401
        except ImportError as e:
            problem = f"onnxruntime cannot be imported ({e})"
    if problem and runtime == "onnx":
        raise RuntimeUnavailable(problem)
    return problem is None


def cache_folder() -> Path:
    from training.bundled import default_cache_dir

    return default_cache_dir() / FOLDER


def _source_sha256(module) -> str:
    return hashlib.sha256(Path(module.__file__).read_bytes()).hexdigest()


def network_key(config: dict) -> str:
    """The key of a checkpoint's network exports: its weights, its network's config, the clip length
    and the code of training/model.py."""
    from training import model

    parts = [EXPORT_FORMAT, "network", config["weights_sha256"], config["model"], CLIP_LENGTH, _source_sha256(model)]
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def detector_key(weights: Path, source: Path) -> str:
    """The key of the detector's export: its weights and its code (`source`, training/detector.py, which passes
    itself: this module imports nothing of the detector, which imports it)."""
    from training.bundled import sha256_of

    parts = [EXPORT_FORMAT, "blazeface", sha256_of(weights), hashlib.sha256(Path(source).read_bytes()).hexdigest()]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def network_files(key: str) -> tuple[str, str]:
    return f"frame-{key}.onnx", f"clip-{key}.onnx"


def int8_files(key: str) -> tuple[str, str]:
    """The network's graphs with int8 convolutions (quantise_network): beside the fp32 ones, same key."""
    return f"frame-{key}-int8.onnx", f"clip-{key}-int8.onnx"


def detector_file(key: str) -> str:
    return f"blazeface-{key}.onnx"


# --- export -----------------------------------------------------------------------------------


class _FrameGraph(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, frames):
        return self.model.frame_features(frames)


class _ClipGraph(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, feats):
        out = self.model.forward_features(feats)
        return out.logits if out.attention is None else (out.logits, out.attention)


class _DetectorGraph(torch.nn.Module):
    """The detector's network fed uint8 gray inputs: `prepare` turns them into its input (detector.gray_input)."""

    def __init__(self, net, prepare):
        super().__init__()
        self.net = net
        self.prepare = prepare

    def forward(self, images):
        return self.net(self.prepare(images))


def _export(
    module: torch.nn.Module, example: tuple, names: tuple[list[str], list[str]], dynamic: tuple, path: Path
) -> None:
    """torch.onnx's dynamo exporter (torch.export, then onnxscript's translation). Not the TorchScript
    exporter (dynamo=False): it traces sizes as constants (the recurrences' `new_zeros(B, ...)`,
    `unflatten(0, g.shape[:2])`), so its graphs fail at any batch size but the example's, and it is
    deprecated; torch.export keeps the sizes as symbols and refuses (Dim.DYNAMIC) where it cannot."""
    import warnings

    module = module.eval()
    # The exporter reports its steps on stdout, and it and its graph optimiser log every pass (and the
    # torchvision ops it skips): none of it is ours to show. Failures still raise.
    quiet = {name: logging.getLogger(name) for name in ("torch.onnx", "torch.export", "onnxscript", "onnx_ir")}
    levels = {name: logger.level for name, logger in quiet.items()}
    for logger in quiet.values():
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                example,
                str(path),
                dynamo=True,
                input_names=names[0],
                output_names=names[1],
                dynamic_shapes=dynamic,
                external_data=False,
                optimize=True,
                verbose=False,
            )
    finally:
        for name, logger in quiet.items():
            logger.setLevel(levels[name])


def session(path: Path, threads: int | None = None):
    """An ONNX Runtime CPU session of the file, running on as many threads as torch does (the
    worker's RAMFER_TORCH_THREADS)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _check(name: str, pairs: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """The largest difference between PyTorch's outputs and the export's; raises past EXPORT_TOLERANCE."""
    worst = max(float(np.abs(a - b).max()) for a, b in pairs)
    if not worst <= EXPORT_TOLERANCE:
        raise RuntimeError(f"the {name} export differs from PyTorch by {worst:.3g} (more than {EXPORT_TOLERANCE})")
    return worst


def export_network(model, folder: Path, key: str) -> dict[str, float | None]:
    """The checkpoint's two graphs (frame, clip) written into `folder` and checked against PyTorch
    on random frames at batches 1 and 5, clips at 1 and 3 (random frames are no faces, but every op
    sees values in the ranges it sees in use); returns each graph's largest difference (None: another
    process wrote it meanwhile)."""
    model = model.float().cpu().eval()
    S = model.config.input_size
    frame_name, clip_name = network_files(key)
    rng = np.random.default_rng(0)
    frames = torch.from_numpy(rng.integers(0, 256, (CLIP_LENGTH + 3, 1, S, S), dtype=np.uint8))
    with torch.no_grad():
        feats = model.frame_features(frames)
    clips = torch.stack([feats[i : i + CLIP_LENGTH] for i in (0, 3, 1)])  # (3, T, P, h, w)
    batch = torch.export.Dim.DYNAMIC
    outputs = ["logits"] + (["attention"] if model.ram is not None else [])

    def check_frames(path: Path) -> float:
        s = session(path, 1)
        return _check(
            "frame",
            [
                (model.frame_features(x).numpy(), s.run(None, {"frames": x.numpy()})[0])
                for x in (frames[:1], frames[:5])
            ],
        )

    def check_clips(path: Path) -> float:
        s = session(path, 1)
        return _check(
            "clip",
            [
                (a, b)
                for x in (clips[:1], clips)
                for a, b in zip(_clip_outputs(model, x), s.run(None, {"features": x.numpy()}))
            ],
        )

    return {
        "frame": _written(
            folder / frame_name,
            check_frames,
            lambda p: _export(_FrameGraph(model), (frames,), (["frames"], ["features"]), ({0: batch},), p),
        ),
        "clip": _written(
            folder / clip_name,
            check_clips,
            lambda p: _export(_ClipGraph(model), (clips,), (["features"], outputs), ({0: batch},), p),
        ),
    }


def _clip_outputs(model, x) -> list[np.ndarray]:
    out = model.forward_features(x)
    return [out.logits.numpy()] + ([] if out.attention is None else [out.attention.numpy()])


def export_detector(net, folder: Path, key: str, prepare) -> float | None:
    """BlazeFace's graph, fed gray uint8 inputs of any batch and side (a multiple of 32), written into
    `folder` and checked against PyTorch on random inputs at 192 px (batch 1) and 128 px (batch 3);
    returns its largest difference (None: another process wrote it meanwhile)."""
    import copy

    net = (
        copy.deepcopy(net).float().cpu().eval().to(memory_format=torch.contiguous_format)
    )  # the caller's stays as it runs
    graph = _DetectorGraph(net, prepare)
    rng = np.random.default_rng(0)
    example = torch.from_numpy(rng.integers(0, 256, (2, 192, 192), dtype=np.uint8))
    checks = [torch.from_numpy(rng.integers(0, 256, shape, dtype=np.uint8)) for shape in ((1, 192, 192), (3, 128, 128))]
    # the side is free within what the strided pads and poolings allow (AUTO: DYNAMIC would refuse
    # their divisibility guards); the check at 128 px proves it is not fixed at the example's 192
    side = torch.export.Dim.AUTO

    def check(path: Path) -> float:
        s = session(path, 1)
        return _check(
            "blazeface", [(a.numpy(), b) for x in checks for a, b in zip(graph(x), s.run(None, {"images": x.numpy()}))]
        )

    return _written(
        folder / detector_file(key),
        check,
        lambda p: _export(
            graph,
            (example,),
            (["images"], ["scores", "regressions"]),
            ({0: torch.export.Dim.DYNAMIC, 1: side, 2: side},),
            p,
        ),
    )


INT8_AGREEMENT = 0.9  # an int8 graph is kept only where it labels this share of its calibration clips as fp32 does


def quantise_network(
    folder: Path, key: str, clips: np.ndarray, described: str, per_channel: bool = False
) -> dict[str, float | None]:
    """The network's fp32 graphs in `folder` (export_network's) written again beside them with their
    convolutions in int8 (int8_files): ONNX Runtime's static quantisation, QDQ, int8 weights and uint8
    activations whose ranges come from `clips` ((N, 8, S, S) uint8 face crops, e.g. 300 real faces:
    the activations of faces, not of noise), recorded in each file's metadata as `described`. Only the
    convolutions: they are most of the work, and the quantiser's shape inference breaks the exported
    GroupNorm when it handles the whole graph. Each graph is kept only where, with it, the network labels
    at least INT8_AGREEMENT of the clips as the fp32 graphs do; returns those shares (None: already there).
    Needs the `onnx` extra."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    frame_fp32, clip_fp32 = (folder / name for name in network_files(key))
    frame_int8, clip_int8 = (folder / name for name in int8_files(key))
    frames = clips.reshape(-1, 1, *clips.shape[2:])  # (N * 8, 1, S, S)

    def network_on(frame_path: Path, clip_path: Path) -> tuple[np.ndarray, np.ndarray]:
        """The clips' per-frame features (N, 8, P, h, w) and logits (N, K) through these two graphs."""
        f, c = session(frame_path, 1), session(clip_path, 1)
        feats = np.concatenate([f.run(None, {"frames": frames[b : b + 256]})[0] for b in range(0, len(frames), 256)])
        feats = feats.reshape(len(clips), clips.shape[1], *feats.shape[1:])
        logits = np.concatenate([c.run(None, {"features": feats[b : b + 32]})[0] for b in range(0, len(feats), 32)])
        return feats, logits

    feats, reference = network_on(frame_fp32, clip_fp32)

    def quantised(src: Path, name: str, batches: list[np.ndarray]):
        class Reader(CalibrationDataReader):
            def __init__(self):
                self.batches = iter(batches)

            def get_next(self):
                batch = next(self.batches, None)
                return None if batch is None else {name: batch}

        def write(path: Path) -> None:
            quantize_static(
                str(src),
                str(path),
                Reader(),
                quant_format=QuantFormat.QDQ,
                per_channel=per_channel,
                weight_type=QuantType.QInt8,
                activation_type=QuantType.QUInt8,
                op_types_to_quantize=["Conv"],
            )
            graph = onnx.load(str(path))
            onnx.helper.set_model_props(graph, {"calibration": described, "quantised_from": src.name})
            onnx.save(graph, str(path))

        return write

    def agreement(frame_path: Path, clip_path: Path) -> float:
        share = float((network_on(frame_path, clip_path)[1].argmax(1) == reference.argmax(1)).mean())
        if share < INT8_AGREEMENT:
            raise RuntimeError(
                f"int8 labels {share:.1%} of the calibration clips as fp32 does (< {INT8_AGREEMENT:.0%})"
            )
        return share

    return {
        "frame": _written(
            frame_int8,
            lambda p: agreement(p, clip_fp32),
            quantised(frame_fp32, "frames", [frames[b : b + 64] for b in range(0, len(frames), 64)]),
        ),
        "clip": _written(
            clip_int8,
            lambda p: agreement(frame_int8, p),
            quantised(clip_fp32, "features", [feats[b : b + 32] for b in range(0, len(feats), 32)]),
        ),
    }


def _written(path: Path, check: Callable[[Path], float], write: Callable[[Path], None]) -> float | None:
    """`write` into a temporary file beside `path`, `check` it, then move it into place (atomic: a
    process that finds the file finds it whole); with several processes at once, one writes and the
    others find its file (None). Returns the check's figure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _lock(path.with_suffix(".lock")):  # removed once done: a process that then makes its own only repeats the work
        if path.is_file():
            return None
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".onnx", dir=path.parent)
        os.close(fd)
        try:
            write(Path(tmp))
            with torch.inference_mode():
                worst = check(Path(tmp))
            os.chmod(tmp, 0o644)  # mkstemp makes it 0600: a server under another user must read it
            os.replace(tmp, path)
            return worst
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


@contextlib.contextmanager
def _lock(path: Path):
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock; the atomic replace still keeps every file whole
        yield
        return
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            fcntl.flock(f, fcntl.LOCK_UN)


def _found(names: Sequence[str], folders: Sequence[Path]) -> Path | None:
    """The first folder that holds every one of `names`."""
    return next((f for f in folders if all((f / n).is_file() for n in names)), None)


def _obtain(
    what: str,
    names: Sequence[str],
    folders: Sequence[Path],
    make: Callable[[Path], object],
    load: Callable[[Path], T],
    required: bool,
) -> T | None:
    """`load` of the folder holding the export `names`: one of `folders`, else the cache, made there
    now if missing. None (and a log line saying why) where it cannot be made or loaded (e.g. an
    onnxruntime too old for the file) and `required` is False; RuntimeUnavailable where it is True."""
    folder = _found(names, [*folders, cache_folder()])
    doing = "loaded"
    try:
        if folder is None:
            doing = "made"
            log.info("exporting the %s to ONNX into %s (once for these weights)", what, cache_folder())
            make(cache_folder())
            folder = cache_folder()
        return load(folder)
    except Exception as e:  # any failure of the optional fast path falls back to the reference, said once
        if required:
            raise RuntimeUnavailable(f"the {what}'s ONNX export cannot be {doing}: {type(e).__name__}: {e}") from e
        log.warning("the %s runs on PyTorch: its ONNX export cannot be %s (%s: %s)", what, doing, type(e).__name__, e)
        return None


# --- running ----------------------------------------------------------------------------------


# Where bf16 autocast is native, batches of at least this many clips run the recurrence faster in PyTorch's
# bf16 than on ONNX Runtime's fp32 (the convolutions are most of the work); smaller ones, a live session's
# clip at a time, faster on ONNX Runtime (the work between ops is most of it). docs/performance.md, "The CPU runtime".
BF16_CLIPS_FROM = 4


class OnnxNetwork:
    """ExpressionNet's frame_features and forward_features on ONNX Runtime, taking and giving CPU
    torch tensors as the module does (Predictor calls either the same way). With `torch_clips_from`,
    batches of at least that many clips go through the module's own recurrence instead (under the
    caller's bf16 autocast: BF16_CLIPS_FROM)."""

    def __init__(self, folder: Path, key: str, model, torch_clips_from: int | None = None, int8: bool = False):
        self.int8 = int8 and _found(int8_files(key), [folder]) is not None
        frame_name, clip_name = int8_files(key) if self.int8 else network_files(key)
        self.model = model
        self.frame = session(folder / frame_name)
        self.clip = session(folder / clip_name)
        # int8 runs a batch of clips as fast as PyTorch's bf16 and a few clips much faster: all of it stays here
        self.torch_clips_from = None if self.int8 else torch_clips_from
        if self.int8:
            self.runtime = "onnx int8"
        elif self.torch_clips_from is None:
            self.runtime = "onnx"
        else:
            self.runtime = f"onnx (torch for {torch_clips_from}+ clips a batch)"

    def frame_features(self, frames: torch.Tensor) -> torch.Tensor:
        x = np.ascontiguousarray(frames.numpy(), dtype=np.uint8)  # the graph takes the crops' own pixels (0..255)
        feats = torch.from_numpy(self.frame.run(None, {"frames": x})[0])
        # Under the caller's bf16 autocast the module gives bf16 features; so does this: fp32 ones would
        # carry fp32 through the recurrence's elementwise steps and cast at every convolution (measured:
        # the network stage 1.4x slower than all-bf16).
        return feats.to(torch.get_autocast_dtype("cpu")) if torch.is_autocast_enabled("cpu") else feats

    def forward_features(self, feats: torch.Tensor):
        from training.model import ModelOutput

        if self.torch_clips_from is not None and len(feats) >= self.torch_clips_from:
            return self.model.forward_features(feats)
        if feats.shape[1] != CLIP_LENGTH:
            raise ValueError(f"the exported clip graph takes clips of {CLIP_LENGTH} frames, not {feats.shape[1]}")
        out = self.clip.run(None, {"features": np.ascontiguousarray(feats.float().numpy())})
        return ModelOutput(
            torch.from_numpy(out[0]), None, torch.from_numpy(out[1]) if self.model.ram is not None else None
        )


def network_runtime(
    model,
    config: dict,
    folders: Sequence[Path],
    runtime: str,
    device,
    torch_clips_from: int | None = None,
    int8: bool = False,
):
    """What runs a loaded checkpoint's network: an OnnxNetwork where `runtime` (RUNTIMES) and the
    device allow it and its export is in `folders` or the cache (made there if missing), else the
    module itself. Both have frame_features and forward_features (and OnnxNetwork a `runtime` naming
    what runs where). With `int8`, the int8 graphs where they lie beside the fp32 ones (they are never
    made at load: they need faces to calibrate on; `python -m training export --int8 DATA`)."""
    if not wants_onnx(runtime, device):
        return model
    key = network_key(config)
    network = _obtain(
        "network",
        network_files(key),
        folders,
        lambda f: export_network(model, f, key),
        lambda f: OnnxNetwork(f, key, model, torch_clips_from, int8),
        runtime == "onnx",
    )
    return model if network is None else network


class OnnxDetector:
    """BlazeFace's network on ONNX Runtime: (B, n, n) uint8 inputs -> (scores, regressions) as CPU torch tensors."""

    def __init__(self, path: Path):
        self.session = session(path)

    def __call__(self, inputs: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        scores, raw = self.session.run(None, {"images": np.ascontiguousarray(inputs, dtype=np.uint8)})
        return torch.from_numpy(scores), torch.from_numpy(raw)


def detector_runtime(
    net, weights: Path, folders: Sequence[Path], runtime: str, device, prepare, source: Path
) -> OnnxDetector | None:
    """An OnnxDetector where `runtime` and the device allow it and the export can be had; else None
    (the caller runs `net`). `prepare` and `source`: the detector's input conversion and its file."""
    if not wants_onnx(runtime, device):
        return None
    key = detector_key(weights, source)
    name = detector_file(key)
    return _obtain(
        "face detector",
        [name],
        folders,
        lambda f: export_detector(net, f, key, prepare),
        lambda f: OnnxDetector(f / name),
        runtime == "onnx",
    )
