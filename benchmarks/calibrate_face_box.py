"""Fit the constants that turn facial points into the box the Haar detector draws.

training/faces.py crops CK+ frames from their landmarks and served frames from Haar detections;
both must frame a face alike. On real faces (the London set: photos with hand-placed templates)
this runs the service's detector and fits, by least squares,
    box centre = eye midpoint + A * (mouth - eye midpoint)      (A along, plus the sideways residual)
    box side   = B * |mouth - eye midpoint|
and prints A, B and how well they fit.

    python benchmarks/calibrate_face_box.py [--london ../shared/datasets/london-set]
"""

import argparse
from pathlib import Path

import cv2
import numpy as np

from training.faces import FaceDetector


def read_template(path: Path) -> np.ndarray:
    lines = path.read_text().split("\n")
    n = int(lines[0])
    return np.array([[float(v) for v in line.split()] for line in lines[1 : 1 + n]])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--london", default="../shared/datasets/london-set")
    args = ap.parse_args()
    detector = FaceDetector(max_side=320)
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


if __name__ == "__main__":
    main()
