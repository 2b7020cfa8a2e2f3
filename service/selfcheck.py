"""A worker proves it can do the job before it registers: the check clip shipped with the package
goes through the same `analyse_video` a job does (decode -> detect -> crop -> model -> vote ->
attention PNGs). A worker that cannot (PyAV missing, a broken checkpoint, a detector that finds
no face) logs why and exits without registering, so /readyz never counts it.

The clip (service/assets/check-face.mp4, ~10 KB of H.264) is the face of scikit-image's
"astronaut" photo (Eileen Collins, a NASA photograph in the public domain), panned a few pixels
over 12 frames; the face is frontal, well lit and ~100 px wide, which any face detector finds.
Regenerate it with `python -m service.selfcheck` (needs the dev extra, for scikit-image).
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)

CHECK_VIDEO = Path(__file__).parent / "assets" / "check-face.mp4"


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


def make_check_clip(path: Path = CHECK_VIDEO, frames: int = 12, side: int = 176) -> Path:
    """Write the check clip: the astronaut's face (public domain), panned a few pixels, H.264."""
    import av
    import cv2
    import numpy as np
    from skimage import data

    image = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)  # 512x512, face ~100 px at (223, 113)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width = stream.height = side
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "veryslow", "crf": "26"}
        for i in range(frames):
            x, y = 223 - side // 2 + i // 2, 113 - side // 2 + 10
            frame = np.ascontiguousarray(image[y : y + side, x : x + side])
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


if __name__ == "__main__":
    written = make_check_clip()
    print(f"{written}: {written.stat().st_size} bytes")
