"""Forward speed of the four networks: clips per second at batch sizes 1 and 32.

Inference (eval mode, torch.inference_mode), fp32, 8-frame 48x48 clips, this machine's threads.
All variants are measured in one run, interleaved round by round, so a noisy neighbour slows
them alike; each figure is the median over rounds, and each variant is also given as a ratio to
plain ConvLSTM measured in the same rounds.

    python benchmarks/model_speed.py [--rounds 7] [--threads 2] [--device cpu] [--markdown]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from training.model import VARIANTS, ExpressionNet, ModelConfig


def clips_per_second(model, batch: int, device, seconds: float = 1.0) -> float:
    x = torch.randint(0, 256, (batch, 8, 1, 48, 48), dtype=torch.uint8, device=device)
    n, start = 0, time.perf_counter()
    while True:
        model(x)
        n += batch
        if device.type == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n / elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    models = {v: ExpressionNet(ModelConfig(variant=v)).to(device).eval() for v in VARIANTS}
    batches = [int(b) for b in args.batches.split(",")]
    speed = {(v, b): [] for v in VARIANTS for b in batches}
    with torch.inference_mode():
        for m in models.values():  # warm-up
            for b in batches:
                clips_per_second(m, b, device, 0.3)
        for _ in range(args.rounds):
            for b in batches:
                for v, m in models.items():
                    speed[(v, b)].append(clips_per_second(m, b, device))
    print(
        f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{args.device}, median of {args.rounds} rounds"
    )
    print("| variant | params | " + " | ".join(f"clips/s @ batch {b} | vs ConvLSTM" for b in batches) + " |")
    print("|---|---|" + "---|---|" * len(batches))
    for v, m in models.items():
        row = [v, f"{sum(p.numel() for p in m.parameters()) / 1e6:.3f} M"]
        for b in batches:
            med = statistics.median(speed[(v, b)])
            base = statistics.median(speed[("convlstm", b)])
            row += [f"{med:.0f}", f"{med / base:.2f}x"]
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
