"""Real video files for the tests, encoded with PyAV (OpenCV here cannot write H.264): training.video.write_video,
and the worker's check clip."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np

from training.video import CODEC_BY_SUFFIX, write_video  # noqa: F401 (the tests import them from here)


def astronaut_frames(n: int = 45, size=(640, 360), zoom=(0.9, 1.25)) -> list[np.ndarray]:
    """A real face (skimage's astronaut, Eileen Collins, public domain) panned and zoomed:
    the detector and the tracker work on a real, moving face."""
    from skimage import data

    img = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)  # 512x512, face near (250, 130)
    w, h = size
    frames = []
    for i in range(n):
        t = i / max(n - 1, 1)
        s = zoom[0] + (zoom[1] - zoom[0]) * t
        m = np.float32([[s, 0, w / 2 - s * (230 + 40 * t)], [0, s, h / 2 - s * (150 + 10 * t)]])
        frames.append(cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT))
    return frames


def blank_frames(n: int, size=(320, 240), value: int = 90) -> list[np.ndarray]:
    """Frames with no face in them (a soft gradient, so the encoder has something to code)."""
    w, h = size
    ramp = np.tile(np.linspace(value - 40, value + 40, w, dtype=np.float32), (h, 1))
    return [np.clip(ramp + 3 * i, 0, 255).astype(np.uint8) for i in range(n)]


def write_check_clip(path: Path, frames: int = 12, side: int = 176) -> Path:
    """The worker's self-check clip (service/assets/check-face.mp4): the astronaut's face (public
    domain), ~100 px wide, panned a few pixels, 176x176 H.264, ~6 KB."""
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
    import argparse

    ap = argparse.ArgumentParser(description="write the repository's generated video files")
    ap.add_argument("--check-clip", action="store_true", help="rewrite service/assets/check-face.mp4")
    ap.add_argument("--astronaut", metavar="PATH", help="write the 40-frame astronaut test video (any suffix of CODEC_BY_SUFFIX)")
    args = ap.parse_args()
    if args.check_clip:
        written = write_check_clip(Path(__file__).resolve().parents[1] / "service" / "assets" / "check-face.mp4")
        print(f"{written}: {written.stat().st_size} bytes")
    if args.astronaut:
        print(write_video(Path(args.astronaut), astronaut_frames(40)))
