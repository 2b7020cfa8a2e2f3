"""A worker proves it can do the job before it registers: the check clip shipped with the package
goes through the same `analyse_video` a job does (decode -> detect -> crop -> model -> vote ->
attention PNGs). A worker that cannot (PyAV missing, a broken checkpoint, a detector that finds
no face) logs why and exits without registering, so /readyz never counts it.

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

from service.settings import DEFAULT_CHECK_VIDEO as CHECK_VIDEO

log = logging.getLogger(__name__)


class SelfCheckError(Exception):
    """The worker cannot analyse a video; the message says why, for the operator's log."""


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
        raise SelfCheckError(f"cannot decode video: the Python package {e.name!r} is not installed "
                             "(it is a dependency of ramfer: reinstall the project)") from e
    except VideoError as e:
        raise SelfCheckError(f"the check video {path} could not be analysed ({e.code}): {e.message}") from e
    except Exception as e:
        raise SelfCheckError(f"the check video {path} could not be analysed: {type(e).__name__}: {e}") from e
    if result["faces"]["frames_with_face"] == 0 or result["expression"] not in predictor.classes:
        raise SelfCheckError(f"the check video {path} gave no usable result: {result['faces']}, {result['expression']!r}")
    log.info("self-check passed: %s decoded, face in %d/%d frames, %r, in %.1f s", path.name,
             result["faces"]["frames_with_face"], result["faces"]["frames"], result["expression"],
             time.perf_counter() - start)
    return result
