"""What the fallback cascade costs: face detection per frame with and without it.

The fallback (training/faces.py) runs only on frames where the default cascade finds no face, so
a frame with a face costs the same; a frame without one pays for a second cascade. Frames
(640x360 gray, the service's test video size): a real face (skimage's astronaut), and three with
no face (a coffee cup, a cat, a flat grey frame). Both detectors run on every frame, interleaved
round by round; printed are median milliseconds per frame and the ratio.

    python benchmarks/detector_speed.py [--rounds 20]
"""

from __future__ import annotations

import argparse
import statistics
import time

import cv2
import numpy as np
from skimage import data

from training.faces import FaceDetector, to_gray


def frame(rgb: np.ndarray) -> np.ndarray:
    """The picture scaled to 360 px high, centred on a 640x360 frame (its shape kept)."""
    gray = to_gray(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    gray = cv2.resize(gray, (round(gray.shape[1] * 360 / gray.shape[0]), 360), interpolation=cv2.INTER_AREA)[:, :640]
    left = (640 - gray.shape[1]) // 2
    return cv2.copyMakeBorder(gray, 0, 0, left, 640 - gray.shape[1] - left, cv2.BORDER_REPLICATE)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args()
    frames = {
        "face (astronaut)": frame(data.astronaut()),
        "no face (coffee)": frame(data.coffee()),
        "no face (cat)": frame(data.chelsea()),
        "no face (flat grey)": np.full((360, 640), 128, np.uint8),
    }
    detectors = {"default only": FaceDetector(fallback=False), "with fallback": FaceDetector()}
    times = {(f, d): [] for f in frames for d in detectors}
    for _ in range(args.rounds):
        for f, gray in frames.items():
            for d, detector in detectors.items():
                start = time.perf_counter()
                detector(gray)
                times[f, d].append((time.perf_counter() - start) * 1000)
    print("| frame | found | default only, ms | with fallback, ms | ratio |")
    print("|---|---|---|---|---|")
    for f, gray in frames.items():
        a, b = (statistics.median(times[f, d]) for d in detectors)
        found = detectors["with fallback"](gray) is not None
        print(f"| {f} | {'yes' if found else 'no'} | {a:.2f} | {b:.2f} | {b / a:.2f}x |")


if __name__ == "__main__":
    main()
