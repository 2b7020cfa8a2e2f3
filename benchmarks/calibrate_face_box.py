"""Fit the constants that turn facial points into the box the Haar detector draws.

training/faces.py crops CK+ frames from their landmarks and served frames from BlazeFace's
landmarks, in the framing of the Haar boxes today's checkpoint was trained on; all must frame a
face alike. On real faces (the London set: photos with hand-placed templates) this runs the Haar
detector (benchmarks/haar_baseline.py, OpenCV < 5) and fits, by least squares,
    box centre = eye midpoint + A * (mouth - eye midpoint)      (A along, plus the sideways residual)
    box side   = B * |mouth - eye midpoint|
and prints A, B and how well they fit. Then, for the fallback cascade (tried where the default
finds no face), it fits how its box maps onto the default's on every photo both find:
    default side = S * fallback side,   default cy = fallback cy + D * default side
(FALLBACK_SIDE_TO_DEFAULT and FALLBACK_DY_TO_DEFAULT in benchmarks/haar_baseline.py).
Then the same A and B with BlazeFace's eye and mouth points instead of the template's
(DETECTOR_BOX in training/faces.py; TEMPLATE_BOX is the first fit), and the aligned crop's
defaults that frame a face as the box crop does: eye distance / crop side and eye height / crop
side, medians over the photos (CropConfig.eye_distance, eye_height).

    python benchmarks/calibrate_face_box.py [--london ../shared/datasets/london-set]
"""

import argparse
from pathlib import Path

import cv2
import numpy as np

import sys

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.haar_baseline import HaarDetector as FaceDetector  # noqa: E402
from training.faces import CropConfig, FaceDetector as BlazeFaceDetector, to_gray  # noqa: E402
from training.synthesis.template import read_template  # noqa: E402


def box_on_eyes_mouth(box, eyes, mouth) -> tuple[float, float, float, float]:
    """A detector box in the frame of the eyes->mouth line: its centre along and across the line and its
    side, each over the line's length, and that length (what box_from_eyes_mouth's A and B are fitted from)."""
    down = mouth - eyes
    length = float(np.hypot(*down))
    unit = down / length
    rel = box[:2] - eyes
    return rel @ unit / length, (rel @ np.array([-unit[1], unit[0]])) / length, box[2] / length, length


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
        # pupils; outer and inner lip outline
        a, b, r, _ = box_on_eyes_mouth(box, (pts[0] + pts[1]) / 2, pts[87:109].mean(axis=0))
        along.append(a)
        across.append(b)
        side_ratio.append(r)
    along, across, side_ratio = map(np.array, (along, across, side_ratio))
    print(f"faces: {len(along)} detected, {misses} missed")
    print(f"A (centre along eyes->mouth) = {np.median(along):.3f}  (IQR {np.percentile(along, 25):.3f}..{np.percentile(along, 75):.3f})")
    print(f"sideways offset / |eyes->mouth| = {np.median(across):.3f}  (should be ~0)")
    print(f"B (side / |eyes->mouth|) = {np.median(side_ratio):.3f}  (IQR {np.percentile(side_ratio, 25):.3f}..{np.percentile(side_ratio, 75):.3f})")
    fit_detector(args.london)
    fit_fallback(args.london)


def fit_detector(london: str):
    """A and B for BlazeFace's points (0, 1 eyes, 3 mouth centre), on the photos Haar finds;
    and the aligned crop's eye distance and height that match the box crop (scale 1.2)."""
    haar, blaze = FaceDetector(max_side=320), BlazeFaceDetector()  # Haar with its fallback, as served before
    along, across, side_ratio, eye_dist, eye_h, downs, ipds, sides = [], [], [], [], [], [], [], []
    photos = sorted(Path(london, "neutral").glob("*.jpg")) + sorted(Path(london, "smiling").glob("*.jpg"))
    for photo in photos:
        gray = cv2.imread(str(photo), cv2.IMREAD_GRAYSCALE)
        box, face = haar(gray), blaze(gray)
        if box is None or face is None:
            continue
        k = face[3:].reshape(6, 2)
        eyes = (k[0] + k[1]) / 2
        a, b, r, length = box_on_eyes_mouth(box, eyes, k[3])
        along.append(a)
        across.append(b)
        side_ratio.append(r)
        downs.append(length)
        ipds.append(np.hypot(*(k[1] - k[0])))
        sides.append(box[2])
        crop_side = box[2] * CropConfig.scale
        eye_dist.append(np.hypot(*(k[1] - k[0])) / crop_side)
        eye_h.append((eyes[1] - (box[1] - crop_side / 2)) / crop_side)
    print(f"BlazeFace points, {len(along)} photos both find: A = {np.median(along):.3f} (IQR {np.percentile(along, 25):.3f}..{np.percentile(along, 75):.3f}), "
          f"sideways {np.median(across):.3f}, B = {np.median(side_ratio):.3f} (IQR {np.percentile(side_ratio, 25):.3f}..{np.percentile(side_ratio, 75):.3f})")
    # side = B' |eyes->mouth| + C |eye to eye|, least squares: the eye distance carries the face's width
    downs, ipds, sides = map(np.array, (downs, ipds, sides))
    X = np.column_stack([downs, ipds])
    (b, c), *_ = np.linalg.lstsq(X, sides, rcond=None)
    print(f"least squares: A = {np.mean(along):.3f}, side = {b:.3f} |eyes->mouth| + {c:.3f} |eye to eye| "
          f"(relative side error sd {np.std((X @ [b, c]) / sides):.3f}, against {np.std(np.median(side_ratio) * downs / sides):.3f} with B alone)")
    print(f"aligned crop matching the box crop: eye_distance = {np.median(eye_dist):.3f}, eye_height = {np.median(eye_h):.3f}")


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
