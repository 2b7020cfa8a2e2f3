"""Which Haar cascade finds the faces: misses on real faces, false faces on pictures without one.

The face detector (training/faces.py) runs OpenCV's default frontal-face cascade and, where it
finds nothing, a fallback cascade. This compares the cascades OpenCV ships, each run the way the
detector runs it (frames scaled to 320 px, minNeighbors 5, the largest face):

* misses on the London set's 204 photos (neutral and smiling), each as the JPEG and as a frame
  of an H.264 video (what the service decodes);
* false faces on scikit-image's sample pictures that show no human face, and on noise frames.

    python benchmarks/detector_coverage.py [--london ../shared/datasets/london-set]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from skimage import data

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.haar_baseline import HaarDetector as FaceDetector, load_cascade  # noqa: E402
from training.faces import to_gray  # noqa: E402
from training.video import read_frames  # noqa: E402

CASCADES = ["haarcascade_frontalface_default.xml", "haarcascade_frontalface_alt.xml", "haarcascade_frontalface_alt2.xml"]
NO_FACE = ["brick", "cell", "chelsea", "clock", "coffee", "coins", "colorwheel", "grass", "gravel",
           "hubble_deep_field", "immunohistochemistry", "logo", "microaneurysms", "moon", "page", "retina", "rocket",
           "shepp_logan_phantom", "text"]


def no_face_pictures() -> dict[str, np.ndarray]:
    pictures = {}
    for name in NO_FACE:
        image = np.asarray(getattr(data, name)())
        if image.dtype != np.uint8:
            image = (255 * (image - image.min()) / max(float(np.ptp(image)), 1e-9)).astype(np.uint8)
        if image.ndim == 3:
            image = cv2.cvtColor(image[..., :3], cv2.COLOR_RGB2BGR)
        pictures[name] = to_gray(image)
    rng = np.random.default_rng(0)
    for sigma in (0.5, 1, 2, 4, 8):
        pictures[f"noise (blur {sigma})"] = cv2.GaussianBlur(rng.integers(0, 256, (360, 640), dtype=np.uint8), (0, 0), sigma)
    return pictures


def london_images(london: Path, tmp: Path):
    """(name, gray): every photo as its JPEG and as the first frame of a 2-frame H.264 video."""
    from videos import write_video

    for photo in sorted(london.glob("neutral/*.jpg")) + sorted(london.glob("smiling/*.jpg")):
        image = cv2.imread(str(photo))
        yield f"{photo.stem}.jpg", to_gray(image)
        video = write_video(tmp / f"{photo.stem}.mp4", [image] * 2)
        yield f"{photo.stem}.h264", next(iter(read_frames(video))).gray


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--london", default="../shared/datasets/london-set")
    args = ap.parse_args()
    detector = FaceDetector(fallback=False)
    cascades = {name: load_cascade(name) for name in CASCADES}
    pictures = no_face_pictures()
    with tempfile.TemporaryDirectory() as tmp:
        london = list(london_images(Path(args.london), Path(tmp)))
    print(f"| cascade | London images missed (of {len(london)}) | false faces (of {len(pictures)} pictures without one) |")
    print("|---|---|---|")
    for name, cascade in cascades.items():
        missed = [n for n, gray in london if detector.detect(cascade, gray) is None]
        false = [n for n, gray in pictures.items() if detector.detect(cascade, gray) is not None]
        print(f"| {name.removeprefix('haarcascade_').removesuffix('.xml')} | {len(missed)} {missed} | {len(false)} {false} |")


if __name__ == "__main__":
    main()
