"""Fit the constants that turn facial points into the box the Haar detector draws.

training/faces.py crops CK+ frames from their landmarks and served frames from Haar detections;
both must frame a face alike. On real faces (the London set: photos with hand-placed templates)
this runs the service's detector and fits, by least squares,
    box centre = eye midpoint + A * (mouth - eye midpoint)      (A along, plus the sideways residual)
    box side   = B * |mouth - eye midpoint|
and prints A, B and how well they fit. Then, for the fallback cascade (tried where the default
finds no face), it fits how its box maps onto the default's on every photo both find:
    default side = S * fallback side,   default cy = fallback cy + D * default side
(FALLBACK_SIDE_TO_DEFAULT and FALLBACK_DY_TO_DEFAULT in training/faces.py).

    python benchmarks/calibrate_face_box.py [--london ../shared/datasets/london-set]
"""

import argparse
from pathlib import Path

import cv2
import numpy as np

from training.faces import FaceDetector, to_gray


def read_template(path: Path) -> np.ndarray:
    lines = path.read_text().split("\n")
    n = int(lines[0])
    return np.array([[float(v) for v in line.split()] for line in lines[1 : 1 + n]])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--london", default="../shared/datasets/london-set")
    args = ap.parse_args()
    detector = FaceDetector(max_side=320, fallback=False)
    along, across, side_ratio, misses = [], [], [], 0
    for tem in sorted(Path(args.london, "neutral").glob("*.tem")):
        gray = cv2.imread(str(tem.with_suffix(".jpg")), cv2.IMREAD_GRAYSCALE)
        box = detector(gray)
        if box is None:
            misses += 1
            continue
        pts = read_template(tem)
        eyes = (pts[0] + pts[1]) / 2  # pupils
        mouth = pts[87:109].mean(axis=0)  # outer and inner lip outline
        down = mouth - eyes
        length = np.hypot(*down)
        unit = down / length
        rel = box[:2] - eyes
        along.append(rel @ unit / length)
        across.append((rel @ np.array([-unit[1], unit[0]])) / length)
        side_ratio.append(box[2] / length)
    along, across, side_ratio = map(np.array, (along, across, side_ratio))
    print(f"faces: {len(along)} detected, {misses} missed")
    print(f"A (centre along eyes->mouth) = {np.median(along):.3f}  (IQR {np.percentile(along, 25):.3f}..{np.percentile(along, 75):.3f})")
    print(f"sideways offset / |eyes->mouth| = {np.median(across):.3f}  (should be ~0)")
    print(f"B (side / |eyes->mouth|) = {np.median(side_ratio):.3f}  (IQR {np.percentile(side_ratio, 25):.3f}..{np.percentile(side_ratio, 75):.3f})")
    fit_fallback(args.london)


def fit_fallback(london: str):
    detector = FaceDetector(max_side=320)
    photos = sorted(Path(london, "neutral").glob("*.jpg")) + sorted(Path(london, "smiling").glob("*.jpg"))
    sides, dys, dxs, only_default, only_fallback = [], [], [], [], []
    for photo in photos:
        gray = to_gray(cv2.imread(str(photo)))
        default, fallback = detector.detect(detector.cascade, gray), detector.detect(detector.fallback, gray)
        if default is None and fallback is not None:
            only_fallback.append(photo.name)
        if fallback is None and default is not None:
            only_default.append(photo.name)
        if default is None or fallback is None:
            continue
        sides.append(default[2] / fallback[2])
        dys.append((default[1] - fallback[1]) / default[2])
        dxs.append((default[0] - fallback[0]) / default[2])
    sides, dys, dxs = map(np.array, (sides, dys, dxs))
    print(f"fallback cascade, {len(photos)} photos: both find {len(sides)}; only the default {only_default}; only the fallback {only_fallback}")
    print(f"S (default side / fallback side) = {np.median(sides):.3f}  (IQR {np.percentile(sides, 25):.3f}..{np.percentile(sides, 75):.3f})")
    print(f"D (default cy - fallback cy) / side = {np.median(dys):.3f}  (IQR {np.percentile(dys, 25):.3f}..{np.percentile(dys, 75):.3f}); cx the same way {np.median(dxs):.3f} (should be ~0)")


if __name__ == "__main__":
    main()
