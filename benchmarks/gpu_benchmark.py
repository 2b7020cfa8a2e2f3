"""The model stage on a GPU: video frames/s and clips/s, several ways, in one run.

A synthetic 20 s / 30 fps video's worth of 48 px crops (600 frames, 297 clips at stride 2) is
pushed through the default checkpoint as the service does (each frame's features once, clips
gathered from them), in batches of --batch clips:
  fp32, fp16 autocast, bf16 autocast, and (unless --no-compile) torch.compile of the recurrent
  part under the fastest dtype, and CUDA-graph capture (mode="reduce-overhead").
Each way is timed for --seconds after warm-up; the target is >= 3000 video frames/s.

    python benchmarks/gpu_benchmark.py [--device cuda] [--batch 256] [--seconds 5] [--videos 8]
"""

from __future__ import annotations

import argparse
import time

import torch

from training.bundled import (
    SERVED_CHECKPOINT as DEFAULT_MODEL_DIR,  # not service.settings': GPU machines may lack pydantic
)
from training.checkpoint import load_checkpoint
from training.clips import clip_indices


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=256, help="clips per forward pass")
    ap.add_argument("--frames", type=int, default=600)
    ap.add_argument("--videos", type=int, default=8, help="videos processed back to back per timing")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--model", default=str(DEFAULT_MODEL_DIR))
    args = ap.parse_args()
    device = torch.device(args.device)
    model, config = load_checkpoint(args.model, device)
    S = config["model"]["input_size"]
    frames = torch.randint(0, 256, (args.frames, 1, S, S), dtype=torch.uint8, device=device)
    clips = torch.from_numpy(clip_indices(args.frames)).to(device)

    def video(fwd, dtype):
        with (
            torch.inference_mode(),
            torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None),
        ):
            feats = model.frame_features(frames)
            for b in range(0, len(clips), args.batch):
                fwd(feats[clips[b : b + args.batch]])

    def timed(fwd, dtype) -> float:
        for _ in range(3):
            video(fwd, dtype)
        if device.type == "cuda":
            torch.cuda.synchronize()
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < args.seconds:
            for _ in range(args.videos):
                video(fwd, dtype)
            n += args.videos
            if device.type == "cuda":
                torch.cuda.synchronize()
        return n / (time.perf_counter() - start)  # videos/s

    ways = [
        ("fp32", model.forward_features, None),
        ("fp16", model.forward_features, torch.float16),
        ("bf16", model.forward_features, torch.bfloat16),
    ]
    if not args.no_compile:
        ways.append(("bf16 + torch.compile", torch.compile(model.forward_features, dynamic=True), torch.bfloat16))
        if device.type == "cuda":
            ways.append(
                (
                    "bf16 + compile(reduce-overhead, CUDA graphs)",
                    torch.compile(model.forward_features, mode="reduce-overhead", dynamic=False),
                    torch.bfloat16,
                )
            )
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"# {name}, torch {torch.__version__}; {args.frames} frames / {len(clips)} clips per video, batch {args.batch}"
    )
    print("| way | video frames/s | clips/s | videos (20 s) per s |")
    print("|---|---|---|---|")
    for label, fwd, dtype in ways:
        try:
            v = timed(fwd, dtype)
        except Exception as e:  # a way this GPU/torch cannot do is reported, not fatal
            print(f"| {label} | failed: {type(e).__name__}: {str(e)[:80]} | | |")
            continue
        print(f"| {label} | {v * args.frames:.0f} | {v * len(clips):.0f} | {v:.2f} |")


if __name__ == "__main__":
    main()
