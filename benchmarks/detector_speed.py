"""What face detection costs per frame: BlazeFace (training/faces.py) against the Haar cascades it replaced.

Frames (640x360 gray, the service's test video size): a real face (skimage's astronaut), and
three with no face (a coffee cup, a cat, a flat grey frame). A frame without a face costs
BlazeFace its tiles too (training/faces.py: a small face is looked for in square tiles), and Haar
its fallback cascade. BlazeFace runs one frame at a time and in batches of 16 (as the service
runs it: per-frame cost = batch time / 16); Haar runs where this OpenCV still has its cascades
(< 5). All run interleaved round by round, with torch's and OpenCV's default threads; printed
are median milliseconds per frame and the ratio to Haar.

    python benchmarks/detector_speed.py [--rounds 20] [--device cuda]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from skimage import data

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.haar_baseline import HAAR_AVAILABLE  # noqa: E402
from training.faces import FaceDetector, to_gray  # noqa: E402


def frame(rgb: np.ndarray) -> np.ndarray:
    """The picture scaled to 360 px high, centred on a 640x360 frame (its shape kept)."""
    gray = to_gray(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    gray = cv2.resize(gray, (round(gray.shape[1] * 360 / gray.shape[0]), 360), interpolation=cv2.INTER_AREA)[:, :640]
    left = (640 - gray.shape[1]) // 2
    return cv2.copyMakeBorder(gray, 0, 0, left, 640 - gray.shape[1] - left, cv2.BORDER_REPLICATE)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    frames = {
        "face (astronaut)": frame(data.astronaut()),
        "no face (coffee)": frame(data.coffee()),
        "no face (cat)": frame(data.chelsea()),
        "no face (flat grey)": np.full((360, 640), 128, np.uint8),
    }
    blaze = FaceDetector(device=args.device)
    detectors = {"blazeface, 1 frame": lambda g: blaze(g), "blazeface, batch of 16": lambda g: blaze.detect_batch([g] * 16)}
    per_call = {"blazeface, 1 frame": 1, "blazeface, batch of 16": 16}
    if HAAR_AVAILABLE:
        from benchmarks.haar_baseline import HaarDetector

        haar = HaarDetector()
        detectors = {"haar (+ fallback)": haar, **detectors}
        per_call["haar (+ fallback)"] = 1
    for d in detectors.values():  # warm-up
        d(frames["face (astronaut)"])
    times = {(f, d): [] for f in frames for d in detectors}
    for _ in range(args.rounds):
        for f, gray in frames.items():
            for d, detect in detectors.items():
                start = time.perf_counter()
                detect(gray)
                times[f, d].append((time.perf_counter() - start) * 1000 / per_call[d])
    names = list(detectors)
    print(f"device {args.device}; median ms per frame over {args.rounds} rounds")
    print("| frame | found | " + " | ".join(f"{n}, ms" for n in names) + (" | blazeface batch / haar |" if HAAR_AVAILABLE else " |"))
    print("|---|---|" + "---|" * len(names) + ("---|" if HAAR_AVAILABLE else ""))
    for f, gray in frames.items():
        med = [statistics.median(times[f, d]) for d in names]
        found = blaze(gray) is not None
        ratio = f" {med[-1] / med[0]:.2f}x |" if HAAR_AVAILABLE else ""
        print(f"| {f} | {'yes' if found else 'no'} | " + " | ".join(f"{m:.2f}" for m in med) + " |" + ratio)


if __name__ == "__main__":
    main()
