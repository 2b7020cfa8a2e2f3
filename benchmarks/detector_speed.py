"""What the served face detector (BlazeFace, training/faces.py) costs per frame, with and without a face.

Frames (640x360 gray, the service's test video size): a real face (skimage's astronaut), and
three with no face (a coffee cup, a cat, a flat grey frame). A frame without a face costs more:
after the whole frame, BlazeFace searches it again in two square tiles (training/faces.py: a small
face is looked for there). BlazeFace runs one frame at a time and in batches of 16 (as the service
runs it: per-frame cost = batch time / 16), on PyTorch and (on a CPU with onnxruntime) on ONNX Runtime
(training/runtime.py), interleaved round by round with torch's default threads; printed are median
milliseconds per frame, the batch's time over the single frame's, and ONNX Runtime's over PyTorch's.

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
import torch
from skimage import data

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.faces import FaceDetector, to_gray
from training.runtime import wants_onnx


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
    blaze = FaceDetector(device=args.device, runtime="torch")
    detectors = {
        "blazeface, 1 frame": lambda g: blaze(g),
        "blazeface, batch of 16": lambda g: blaze.detect_batch([g] * 16),
    }
    per_call = {"blazeface, 1 frame": 1, "blazeface, batch of 16": 16}
    if args.device == "cpu" and wants_onnx(
        "auto", args.device
    ):  # the same network on ONNX Runtime (training/runtime.py)
        fast = FaceDetector(device=args.device, runtime="onnx")
        detectors |= {"onnx, 1 frame": lambda g: fast(g), "onnx, batch of 16": lambda g: fast.detect_batch([g] * 16)}
        per_call |= {"onnx, 1 frame": 1, "onnx, batch of 16": 16}
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
    onnx = "onnx, batch of 16" in detectors
    print(f"device {args.device}; {torch.get_num_threads()} threads; median ms per frame over {args.rounds} rounds")
    print(
        "| frame | found | "
        + " | ".join(f"{n}, ms" for n in names)
        + " | batch / 1 frame |"
        + (" onnx / torch, batch |" if onnx else "")
    )
    print("|---|---|" + "---|" * len(names) + "---|" + ("---|" if onnx else ""))
    for f, gray in frames.items():
        med = {d: statistics.median(times[f, d]) for d in names}
        found = blaze(gray) is not None
        ratio = f" {med['onnx, batch of 16'] / med['blazeface, batch of 16']:.2f}x |" if onnx else ""
        print(
            f"| {f} | {'yes' if found else 'no'} | "
            + " | ".join(f"{m:.2f}" for m in med.values())
            + f" | {med['blazeface, batch of 16'] / med['blazeface, 1 frame']:.2f}x |"
            + ratio
        )


if __name__ == "__main__":
    main()
