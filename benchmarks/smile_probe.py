"""How much of a real smile survives each crop size: a linear probe on the London stills.

The served model reads 48 px gray crops, and the smiles it misses on held-out people barely move
the lips. Before paying for a network at a larger input (benchmarks/train_step_speed.py), this
asks a cheap question: with the same people held out as the London folds (london.split_identities),
how well does a linear classifier on HOG features tell each person's neutral photo from their
smiling one, from crops made exactly as the service makes them (detector box, scale 1.2) at
each size? Two HOG designs, both printed: cells of 6 px (a larger crop gives more, finer cells:
the detail the size offers), and an 8x8 grid of cells at every size (the same features, only
the pixels behind each cell change).

    python benchmarks/smile_probe.py [--london LONDON_DIR] [--sizes 32 48 64 96]

It is a diagnostic, not a model: a probe that gains little from 48 to 64 px says resolution is not
what the network lacks.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from skimage.feature import hog
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from training.synthesis.london import HOLDOUT_EVERY, LONDON_ENV, find_london, list_identities, split_identities
from training.faces import CropConfig, FaceDetector, crop_face, to_gray


def features(crop: np.ndarray, cell: int | None) -> np.ndarray:
    """HOG with cells of `cell` px, or of side/8 (an 8x8 grid) when cell is None."""
    cell = cell or crop.shape[0] // 8
    return hog(crop, orientations=9, pixels_per_cell=(cell, cell), cells_per_block=(2, 2), feature_vector=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--london", default=None, help=f"the London set (default: ${LONDON_ENV})")
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 48, 64, 96])
    args = ap.parse_args()
    args.london = str(find_london(args.london))
    ids = list_identities(args.london)
    detector = FaceDetector()
    crops = {size: [] for size in args.sizes}  # (face_id, label, crop)
    for face_id in ids:
        for label, photo in ((0, f"neutral/{face_id}_03.jpg"), (1, f"smiling/{face_id}_08.jpg")):
            gray = to_gray(cv2.imread(str(Path(args.london) / photo)))
            box = detector(gray)
            if box is None:
                raise SystemExit(f"no face found in {photo}")
            for size in args.sizes:
                crops[size].append((face_id, label, crop_face(gray, box[:3], size, CropConfig.scale)))
    print(f"{len(ids)} people, neutral vs smiling photo, 5 person-independent folds (the London folds)")
    print("| HOG cells | crop side | right | accuracy | neutral right | smiles right |")
    print("|---|---|---|---|---|---|")
    for cell, size in [(cell, size) for cell in (6, None) for size in args.sizes]:
        people = np.array([c[0] for c in crops[size]])
        y = np.array([c[1] for c in crops[size]])
        x = np.stack([features(c[2], cell) for c in crops[size]])
        predicted = np.full(len(y), -1)
        for fold in range(HOLDOUT_EVERY):
            held = np.isin(people, split_identities(ids, fold)[1])
            probe = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=5000))
            probe.fit(x[~held], y[~held])
            predicted[held] = probe.predict(x[held])
        right = predicted == y
        print(f"| {f'{cell} px' if cell else '8x8 grid'} | {size} px | {right.sum()} / {len(y)} | {right.mean():.1%} | {right[y == 0].sum()} / {(y == 0).sum()} | {right[y == 1].sum()} / {(y == 1).sum()} |")


if __name__ == "__main__":
    main()
