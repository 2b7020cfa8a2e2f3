"""What a training step costs at each input size (training.train.train_step, the step `fit` runs:
batch 16, bf16 autocast where the CPU has it, forward + the recipe's loss + backward + AdamW).

Before training a larger-input network (`training train --input-size`), this says how much longer
it takes. The sizes run interleaved round by round, so machine noise hits them alike; printed
are median milliseconds per step and the ratio to the first size.

    python benchmarks/train_step_speed.py [--sizes 48 64 96] [--rounds 5] [--steps 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from training.model import ExpressionNet, ModelConfig
from training.train import TrainConfig, bf16_ok, train_step


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[48, 64, 96])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=5, help="steps timed per size and round")
    args = ap.parse_args()
    recipe, device = TrainConfig(), torch.device("cpu")
    amp = recipe.amp and bf16_ok(device)
    torch.manual_seed(0)
    setups = {}
    for size in args.sizes:
        model = ExpressionNet(ModelConfig(num_classes=8, input_size=size)).train()
        opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
        x = torch.rand(recipe.batch_size, 8, 1, size, size) * 255
        y = torch.randint(0, 8, (recipe.batch_size,))
        setups[size] = (model, opt, x, y)

    def step(model, opt, x, y):
        train_step(model, opt, x, y, amp=amp)

    for size in args.sizes:  # warm-up
        step(*setups[size])
    times = {size: [] for size in args.sizes}
    for _ in range(args.rounds):
        for size in args.sizes:
            start = time.perf_counter()
            for _ in range(args.steps):
                step(*setups[size])
            times[size].append((time.perf_counter() - start) / args.steps * 1000)
    base = statistics.median(times[args.sizes[0]])
    print(f"batch {recipe.batch_size}, bf16 autocast {amp}, {torch.get_num_threads()} threads")
    print("| input | ms per step | vs first |")
    print("|---|---|---|")
    for size in args.sizes:
        ms = statistics.median(times[size])
        print(f"| {size} px | {ms:.0f} | {ms / base:.2f}x |")


if __name__ == "__main__":
    main()
