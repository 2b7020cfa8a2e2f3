"""End-to-end pipeline speed per configuration, per stage, and agreement with the baseline.

A fixed set of videos: a 20 s, 640x360, 30 fps real face (skimage's astronaut, panned and
zoomed) and 14 synthetic expression clips (7 classes x 2 subjects, drawn by training.synthesis.drawn,
640x490, H.264). Every configuration runs every video, interleaved round by round, through
`analyse_video` (what `python -m service predict` and the workers run). Printed: the long
video's per-stage milliseconds and speed (x real time, and against decoding alone), and for all
videos whether the vote and the clip labels match the baseline configuration.

Configurations: RAMFER_DETECT_EVERY, bf16 autocast and the runtime (PyTorch or ONNX Runtime), each against
`baseline` (PyTorch fp32, every frame detected).

    python benchmarks/pipeline_speed.py [--rounds 3] [--configs baseline,bf16,onnx,...] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from service.pipeline import Predictor, analyse_video
from service.settings import Settings
from training.video import read_frames

CONFIGS = {  # name: (detect_every, bf16, runtime); the Haar-era DETECT_MAX_SIDE is gone (BlazeFace sees 192 or 128 px)
    "baseline": (1, False, "torch"),  # PyTorch fp32: the reference
    "every2": (2, False, "torch"),
    "every3": (3, False, "torch"),
    "bf16": (1, True, "torch"),
    "every3+bf16": (3, True, "torch"),
    "auto": (
        1,
        True,
        "auto",
    ),  # the service's defaults (RAMFER_INFERENCE_BF16=true, RAMFER_INFERENCE_RUNTIME=auto: training/runtime.py)
    "onnx": (1, False, "onnx"),  # the network and the detector on ONNX Runtime
    "onnx+every2": (2, False, "onnx"),
    "auto+every2": (2, True, "auto"),  # the service's defaults with the detector on every k-th frame
    "auto+every3": (3, True, "auto"),
    "int8+every2": (2, True, "auto"),  # the service's defaults now: the network's int8 exports (RAMFER_INFERENCE_INT8)
    "auto+every4": (4, True, "auto"),
}


def make_videos(folder: Path) -> list[Path]:
    from videos import astronaut_frames, write_video

    from training.synthesis.drawn import render_sequence
    from training.synthesis.drawn_face import make_subject
    from training.synthesis.facs import CLASSES

    paths = [write_video(folder / "astronaut_20s.mp4", astronaut_frames(600, zoom=(0.8, 1.3)))]
    for s in range(2):
        for c in CLASSES:
            rng = np.random.default_rng([99, s, CLASSES.index(c)])
            frames, _ = render_sequence(make_subject(np.random.default_rng([99, s])), c, 24, rng)
            paths.append(write_video(folder / f"synth_{s}_{c}.mp4", frames))
    return paths


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--threads", type=int, default=None, help="torch's (and ONNX Runtime's) threads (default: torch's)")
    args = ap.parse_args()
    names = args.configs.split(",")
    videos = make_videos(Path(tempfile.mkdtemp(prefix="ramfer-speed-")))
    long_video = videos[0]
    if args.threads:
        torch.set_num_threads(args.threads)  # ONNX Runtime's sessions take torch's count
    predictors = {
        n: Predictor(
            Settings().model_dir, None, 32, bf16=CONFIGS[n][1], runtime=CONFIGS[n][2], int8=n.startswith("int8")
        )
        for n in names
    }
    for p in predictors.values():
        p.warm_up()
    settings = {n: Settings(detect_every=CONFIGS[n][0]) for n in names}
    results = {n: {} for n in names}
    stages = {n: {} for n in names}
    totals = {n: [] for n in names}
    decode = []
    for r in range(args.rounds):
        start = time.perf_counter()
        n_frames = sum(1 for _ in read_frames(long_video))
        decode.append(time.perf_counter() - start)
        for n in names:
            for v in videos if r == 0 else [long_video]:  # the short clips once: they decide agreement
                start = time.perf_counter()
                res = analyse_video(v, predictors[n], settings[n])
                if v == long_video:
                    totals[n].append(time.perf_counter() - start)
                    for k, ms in res["timings_ms"].items():
                        stages[n].setdefault(k, []).append(ms)
                results[n][v.name] = res
    med = statistics.median
    duration = n_frames / 30
    print(
        f"# {long_video.name}: {n_frames} frames, 640x360, {duration:.0f} s; median of {args.rounds} rounds; "
        f"decode alone {med(decode):.2f} s; {torch.get_num_threads()} threads"
    )
    for n, p in predictors.items():
        print(
            f"# {n}: network on {p.runtime}{' (bf16)' if p.bf16 else ''}, detector on {p.detector.net.runtime}, RAMFER_DETECT_EVERY={CONFIGS[n][0]}"
        )
    keys = ["decode", "detect", "crop", "infer", "vote", "render", "total"]
    print("| config | " + " | ".join(f"{k} ms" for k in keys) + " | x real time | vs decode alone | frames/s |")
    print("|---|" + "---|" * (len(keys) + 3))
    for n in names:
        t = med(totals[n])
        cells = [f"{med(stages[n][k]):.0f}" if k in stages[n] else "-" for k in keys]
        print(
            f"| {n} | " + " | ".join(cells) + f" | {duration / t:.2f} | {t / med(decode):.1f}x | {n_frames / t:.0f} |"
        )
    print()
    print(f"| config | votes = baseline (of {len(videos)} videos) | clip labels = baseline | faces found (frames) |")
    print("|---|---|---|---|")
    base = results["baseline"] if "baseline" in results else results[names[0]]
    for n in names:
        same_vote = sum(results[n][v]["expression"] == base[v]["expression"] for v in base)
        pairs = [(a["label"], b["label"]) for v in base for a, b in zip(results[n][v]["clips"], base[v]["clips"])]
        same_clip = np.mean([a == b for a, b in pairs])
        faces = sum(results[n][v]["faces"]["frames_with_face"] for v in base)
        print(f"| {n} | {same_vote} | {100 * same_clip:.1f} % | {faces} |")


if __name__ == "__main__":
    main()
