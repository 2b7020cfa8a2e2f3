"""A worker proves it can do the job before it registers: the check clip shipped with the package
goes through the same `analyse_video` a job does (decode -> detect -> crop -> model -> vote ->
attention PNGs). A worker that cannot (PyAV missing, a broken checkpoint, a detector that finds
no face) logs why and exits without registering, so /readyz never counts it. A checkpoint or
detector weights that cannot be loaded at all are said in one line (ModelUnavailable), by the
worker, by `predict`, and by `serve` before it starts anything (check_model_files).

The clip (service/assets/check-face.mp4, ~6 KB of H.264) is the face of scikit-image's
"astronaut" photo (Eileen Collins, a NASA photograph in the public domain), panned a few pixels
over 12 frames; the face is frontal, well lit and ~100 px wide, which any face detector finds.
Regenerate it with `python tests/videos.py --check-clip` (needs the dev extra, for scikit-image).
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

from service.settings import DEFAULT_CHECK_VIDEO as CHECK_VIDEO  # noqa: F401  re-exported: tests import it from here

log = logging.getLogger(__name__)


class SelfCheckError(Exception):
    """The worker cannot analyse a video; the message says why, for the operator's log."""


class ModelUnavailable(Exception):
    """The checkpoint or the face detector's weights cannot be loaded. The message is one line for
    the operator (the log, the command line) that names the setting and what was looked for; it
    holds server paths, so it never goes into an HTTP answer."""


def model_source(settings, flag: str | None = None) -> str:
    """Where the checkpoint folder came from, in words: `--model DIR`, `RAMFER_MODEL_DIR=DIR`, or the
    bundled default."""
    if flag:
        return f"{flag} {settings.model_dir}"
    if "model_dir" in settings.model_fields_set:
        return f"RAMFER_MODEL_DIR={settings.model_dir}"
    return f"RAMFER_MODEL_DIR unset, the bundled checkpoint {settings.model_dir}"


def model_unavailable(settings, error: Exception, flag: str | None = None) -> ModelUnavailable:
    """A CheckpointError or a DetectorError as the one line an operator reads:
    `cannot load the model: RAMFER_MODEL_DIR=/x/y: config.json not found`."""
    from training.bundled import DetectorError

    if isinstance(error, DetectorError):  # no setting moves the detector's weights: they are the package's
        return ModelUnavailable(
            f"cannot load the face detector: {error.path}: {error.problem} "
            "(it ships with the package: reinstall ramfer)"
        )
    problem = error.problem if error.folder is not None else str(error)
    hint = ""
    if not flag and "model_dir" not in settings.model_fields_set:
        hint = " (a broken install: reinstall ramfer, or set RAMFER_MODEL_DIR to a checkpoint folder)"
    return ModelUnavailable(f"cannot load the model: {model_source(settings, flag)}: {problem}{hint}")


def check_model_files(settings, flag: str | None = None) -> dict:
    """Without torch, before anything is started: the checkpoint's config.json and weights (their
    sha256 the recorded one) and the face detector's weights are there. Returns the checkpoint's
    config; raises ModelUnavailable."""
    from training.bundled import DETECTOR_WEIGHTS, DetectorError
    from training.checkpoint import CheckpointError, verify_checkpoint

    try:
        config = verify_checkpoint(settings.model_dir)
    except CheckpointError as e:
        raise model_unavailable(settings, e, flag) from None
    if not DETECTOR_WEIGHTS.is_file():
        raise model_unavailable(settings, DetectorError("not found", DETECTOR_WEIGHTS))
    return config


def self_check(predictor, settings) -> dict:
    """Analyse the check clip as a job would; returns the result, raises SelfCheckError."""
    from service.pipeline import analyse_video
    from training.video import VideoError

    path = Path(settings.check_video)
    start = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="ramfer-check-") as out:
            result = analyse_video(path, predictor, settings, out_dir=Path(out))
            images = [Path(out) / f"{m['name']}.png" for m in result["attention_maps"]]
            if not images or not all(p.is_file() and p.read_bytes().startswith(b"\x89PNG") for p in images):
                raise SelfCheckError(f"the check video {path} was analysed but no attention image was written")
    except SelfCheckError:
        raise
    except ModuleNotFoundError as e:
        raise SelfCheckError(
            f"cannot decode video: the Python package {e.name!r} is not installed "
            "(it is a dependency of ramfer: reinstall the project)"
        ) from e
    except VideoError as e:
        raise SelfCheckError(f"the check video {path} could not be analysed ({e.code}): {e.message}") from e
    except Exception as e:
        raise SelfCheckError(f"the check video {path} could not be analysed: {type(e).__name__}: {e}") from e
    if result["faces"]["frames_with_face"] == 0 or result["expression"] not in predictor.classes:
        raise SelfCheckError(
            f"the check video {path} gave no usable result: {result['faces']}, {result['expression']!r}"
        )
    log.info(
        "self-check passed: %s decoded, face in %d/%d frames, %r, in %.1f s",
        path.name,
        result["faces"]["frames_with_face"],
        result["faces"]["frames"],
        result["expression"],
        time.perf_counter() - start,
    )
    return result
