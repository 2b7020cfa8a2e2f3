"""The whole pipeline with detection and the model on one device (CUDA when present): what a worker does.

1. Detection alone: BlazeFace (training/faces.py) on batches of real 640x360 frames, per-frame
   milliseconds by batch size (CUDA synchronised before the clock stops).
2. End to end: `analyse_video` (what the worker runs) on a 20 s 640x360 real face video with the
   Predictor on the device (detector and model both there), per stage, median of --rounds.
The video is the London-set one (benchmarks/face_video.py) where the set is on the machine,
else skimage's astronaut panned and zoomed (tests/videos.py). Runs unchanged on a CPU (then it
measures the CPU).

    python benchmarks/gpu_pipeline.py [--device cuda] [--rounds 3] [--batches 1 16 64]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 16, 64])
    args = ap.parse_args()
    device = torch.device(args.device)

    from videos import astronaut_frames, write_video

    from benchmarks.face_video import LONDON, write_face_video
    from service.pipeline import Predictor, analyse_video
    from service.settings import Settings
    from training.video import read_frames

    folder = Path(tempfile.mkdtemp(prefix="ramfer-gpu-"))
    if (LONDON / "neutral" / "013_03.jpg").is_file():
        video, source = write_face_video(folder / "london_013.mp4"), "London person 013"
    else:
        video, source = (
            write_video(folder / "astronaut.mp4", astronaut_frames(600, zoom=(0.8, 1.3))),
            "skimage astronaut",
        )
    grays = [f.gray for f in read_frames(video)]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"# device {device} ({name}), torch {torch.__version__}; video: {source}, {len(grays)} frames 640x360\n")

    predictor = Predictor.from_settings(Settings(), device=str(device))
    predictor.warm_up()
    print("| detection batch | ms per frame (median) | faces found |")
    print("|---|---|---|")
    for b in args.batches:
        chunks = [grays[i : i + b] for i in range(0, min(len(grays), max(4 * b, 64)), b)]
        predictor.detector.detect_batch(chunks[0])  # warm-up (CUDA kernels, cuDNN choice)
        times, found = [], 0
        for chunk in chunks:
            sync(device)
            start = time.perf_counter()
            rows = predictor.detector.detect_batch(chunk)
            sync(device)
            times.append(1000 * (time.perf_counter() - start) / len(chunk))
            found += sum(r is not None for r in rows)
        print(f"| {b} | {statistics.median(times):.2f} | {found}/{sum(len(c) for c in chunks)} |")

    stages, totals = [], []
    for _ in range(args.rounds):
        start = time.perf_counter()
        result = analyse_video(video, predictor, Settings())
        totals.append(time.perf_counter() - start)
        stages.append(result["timings_ms"])
    keys = list(stages[0])
    t = statistics.median(totals)
    print(
        f"\nend to end (analyse_video, detector batch {predictor.detect_batch}, model on {device}): {t:.2f} s median of {args.rounds}, "
        f"{len(grays) / t:.0f} frames/s; faces in {result['faces']['frames_with_face']}/{result['faces']['frames']} frames"
    )
    print("stages, median ms: " + ", ".join(f"{k} {statistics.median(s[k] for s in stages):.0f}" for k in keys))


if __name__ == "__main__":
    main()
