"""A real face video for the benchmarks, made from a London-set person's two photos (never committed):
640x360, 30 fps, H.264 (PyAV), the neutral photo for the first half and the smiling photo for
the second, panned and zoomed throughout (as tests/videos.py's astronaut video), so the detector
tracks a moving face and the clip labels change once.

    python benchmarks/face_video.py OUT.mp4 [--person 013] [--seconds 20]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

LONDON = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "london-set"


def face_frames(london: Path, person: str, seconds: float = 20, fps: int = 30, size=(640, 360)):
    """The frames, one at a time (a 20 s video is 600 BGR frames)."""
    photos = [
        cv2.imread(str(london / "neutral" / f"{person}_03.jpg")),
        cv2.imread(str(london / "smiling" / f"{person}_08.jpg")),
    ]
    if any(p is None for p in photos):
        raise FileNotFoundError(f"person {person} is not in {london}")
    h0, w0 = photos[0].shape[:2]
    w, h = size
    n = int(seconds * fps)
    for i in range(n):
        t = i / max(n - 1, 1)
        img = photos[0] if i < n // 2 else photos[1]
        s = 0.4 + 0.2 * t  # zoom in slowly: the face box from ~110 to ~160 px
        cx = w0 / 2 + 40 * np.sin(2 * np.pi * t)  # pan sideways and back
        cy = h0 * 0.45 + 15 * np.cos(2 * np.pi * t)
        m = np.float32([[s, 0, w / 2 - s * cx], [0, s, h / 2 - s * cy]])
        yield cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE)


def write_face_video(path: Path, london: Path = LONDON, person: str = "013", seconds: float = 20) -> Path:
    from videos import write_video

    return write_video(Path(path), list(face_frames(london, person, seconds)))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--london", default=str(LONDON))
    ap.add_argument("--person", default="013")
    ap.add_argument("--seconds", type=float, default=20)
    a = ap.parse_args()
    print(write_face_video(Path(a.out), Path(a.london), a.person, a.seconds))
