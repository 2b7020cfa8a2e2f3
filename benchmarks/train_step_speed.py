"""What a training step costs at each input size (training.train.train_step, the step `fit` runs:
batch 16, bf16 autocast where the CPU has it, forward + the recipe's loss + backward + AdamW).

Before training a larger-input network (`training train --input-size`), this says how much longer
it takes; with --compile, what `training train|cv --compile` buys at each size (the same step
through torch.compile, as `fit` runs it; the minutes of compiling are printed, not counted).
The ways run interleaved round by round, so machine noise hits them alike; printed are median
milliseconds per step and each one's time over the first row's.

    python benchmarks/train_step_speed.py [--sizes 48 64 96] [--compile] [--rounds 5] [--steps 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from training.device import bf16_ok
from training.model import ExpressionNet, ModelConfig
from training.train import TrainConfig, train_step


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[48, 64, 96])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=5, help="steps timed per size and round")
    ap.add_argument("--compile", action="store_true", help="also each size through torch.compile")
    args = ap.parse_args()
    recipe, device = TrainConfig(), torch.device("cpu")
    amp = recipe.amp and bf16_ok(device)
    torch.manual_seed(0)
    ways = [(size, compiled) for size in args.sizes for compiled in ((False, True) if args.compile else (False,))]
    setups = {}
    for size, compiled in ways:
        model = ExpressionNet(ModelConfig(num_classes=8, input_size=size)).train()
        opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
        x = torch.rand(recipe.batch_size, 8, 1, size, size) * 255
        y = torch.randint(0, 8, (recipe.batch_size,))
        setups[size, compiled] = (torch.compile(model, dynamic=False) if compiled else model, opt, x, y)

    def step(model, opt, x, y):
        train_step(model, opt, x, y, amp=amp)

    for size, compiled in ways:  # warm-up; the first compiled step compiles
        start = time.perf_counter()
        step(*setups[size, compiled])
        if compiled:
            print(
                f"compiling at {size} px: {time.perf_counter() - start:.0f} s (inductor's disk cache makes later runs quicker)"
            )
    times = {way: [] for way in ways}
    for _ in range(args.rounds):
        for way in ways:
            start = time.perf_counter()
            for _ in range(args.steps):
                step(*setups[way])
            times[way].append((time.perf_counter() - start) / args.steps * 1000)
    base = statistics.median(times[ways[0]])
    print(f"batch {recipe.batch_size}, bf16 autocast {amp}, {torch.get_num_threads()} threads")
    print("| input | way | ms per step | time vs first row |")
    print("|---|---|---|---|")
    for size, compiled in ways:
        ms = statistics.median(times[size, compiled])
        print(f"| {size} px | {'torch.compile' if compiled else 'eager'} | {ms:.0f} | {ms / base:.2f}x |")


if __name__ == "__main__":
    main()
