"""Real video files for the tests, encoded with PyAV (OpenCV here cannot write H.264): training.video.write_video,
and the worker's check clip."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np

from training.video import CODEC_BY_SUFFIX, write_video  # noqa: F401 (the tests import them from here)

LOSSLESS = {"qp": "0", "preset": "veryfast"}  # x264 at qp 0: the luma decodes exactly as written, however turned


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


LONDON = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "london-set"


def london_tile(photo: str, side: int) -> np.ndarray:
    """Head and shoulders of a London set photo (CC BY 4.0; e.g. "smiling/091_08"), side x side BGR."""
    image = cv2.imread(str(LONDON / f"{photo}.jpg"))  # 675x675, the eyes near y = 292, the face centred near x = 338
    return cv2.resize(image[130:550, 128:548], (side, side), interpolation=cv2.INTER_AREA)


def people_frames(n: int, people: list[tuple[np.ndarray, object]], size=(640, 360)) -> list[np.ndarray]:
    """Frames of several real faces: `people` is [(tile, where)], where(i) -> the tile's top-left
    (x, y) in frame i, or None when the person is not in it; later people are drawn over earlier
    ones (in front). The background is a soft grey gradient."""
    w, h = size
    ramp = np.tile(np.linspace(70, 150, w, dtype=np.float32), (h, 1))
    frames = []
    for i in range(n):
        frame = cv2.cvtColor(np.clip(ramp, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
        for tile, where in people:
            if (at := where(i)) is None:
                continue
            x, y = (int(round(v)) for v in at)
            t = tile.shape[0]
            x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + t, w), min(y + t, h)
            if x1 > x0 and y1 > y0:
                frame[y0:y1, x0:x1] = tile[y0 - y : y1 - y, x0 - x : x1 - x]
        frames.append(frame)
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
    ap.add_argument(
        "--astronaut", metavar="PATH", help="write the 40-frame astronaut test video (any suffix of CODEC_BY_SUFFIX)"
    )
    args = ap.parse_args()
    if args.check_clip:
        written = write_check_clip(Path(__file__).resolve().parents[1] / "service" / "assets" / "check-face.mp4")
        print(f"{written}: {written.stat().st_size} bytes")
    if args.astronaut:
        print(write_video(Path(args.astronaut), astronaut_frames(40)))
