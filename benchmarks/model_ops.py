"""The recurrence's slowest operations on a CPU, and the network with this tree's model.py against an
older checkout's, on the same weights and the same clips.

Ops (one (32, 32, 24, 24) fp32 tensor: a gate of the first recurrent layer, one step of 32 clips):
  torch.tanh against tanh through the sigmoid (training/model.tanh), and nn.MaxPool2d on a contiguous
  (N, C, H, W) tensor against the same pooled channels-last (training/model.MaxPool2d).
Network (--before DIR, a checkout of an earlier commit, e.g. `git archive HEAD | tar -x -C DIR`):
  the recurrence (forward_features) of the served checkpoint on a batch of clips of real face crops
  (the check video's, repeated) in fp32 and under bf16 autocast, both model.py files interleaved round
  by round; prints ms per clip, the speed-up, the largest difference of the logits and the share of
  equal labels.

    python benchmarks/model_ops.py [--before DIR] [--rounds 5] [--batch 32] [--threads 1]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from training import model as this_model  # noqa: E402
from training.checkpoint import crop_config, load_checkpoint  # noqa: E402


def timed(fn, *args, rounds: int = 10) -> float:
    """Median ms of `rounds` calls, after two to warm up."""
    for _ in range(2):
        fn(*args)
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn(*args)
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def ops(rounds: int) -> None:
    x = torch.randn(32, 32, 24, 24)
    pool, fast_pool = torch.nn.MaxPool2d(2), this_model.MaxPool2d(2)
    with torch.inference_mode():
        rows = [
            ("torch.tanh", timed(torch.tanh, x, rounds=rounds)),
            ("tanh via sigmoid (model.tanh)", timed(this_model.tanh, x, rounds=rounds)),
            ("torch.sigmoid", timed(torch.sigmoid, x, rounds=rounds)),
            ("nn.MaxPool2d(2), contiguous NCHW", timed(pool, x, rounds=rounds)),
            ("model.MaxPool2d(2), pooled channels-last", timed(fast_pool, x, rounds=rounds)),
        ]
        tanh_diff = (this_model.tanh(x) - torch.tanh(x)).abs().max().item()
        pool_equal = torch.equal(pool(x), fast_pool(x))
    print("## Ops, one (32, 32, 24, 24) fp32 tensor\n\n| op | ms (median) |\n|---|---|")
    for name, ms in rows:
        print(f"| {name} | {ms:.2f} |")
    print(f"\ntanh via sigmoid - torch.tanh: at most {tanh_diff:.1e}; the two poolings equal: {pool_equal}\n")


def load_model_module(folder: Path):
    spec = importlib.util.spec_from_file_location("model_before", folder / "training" / "model.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def real_clips(batch: int, crop) -> torch.Tensor:
    """(batch, 8, 1, 48, 48) clips of the check video's face crops, cut as the service cuts them."""
    from training.data import preprocess_video_file

    crops = torch.as_tensor(preprocess_video_file(ROOT / "service" / "assets" / "check-face.mp4", crop))
    starts = [(2 * i) % max(1, len(crops) - 8) for i in range(batch)]
    return torch.stack([crops[s : s + 8] for s in starts]).unsqueeze(2)


def networks(before: Path, rounds: int, batch: int) -> None:
    model, config = load_checkpoint("default")
    before_model = load_model_module(before)
    old = before_model.ExpressionNet(before_model.ModelConfig(**config["model"]))
    old.load_state_dict(model.state_dict())
    old.eval()
    clips = real_clips(batch, crop_config(config))
    with torch.inference_mode():
        feats = model.frame_features(clips.flatten(0, 1)).unflatten(0, clips.shape[:2])
    print(f"## The recurrence, served checkpoint, {batch} clips a batch, this tree against {before}\n")
    print("| precision | before ms/clip | now ms/clip | speed-up | largest logit difference | labels equal |")
    print("|---|---|---|---|---|---|")
    for bf16 in (False, True):

        def run(net, bf16=bf16):
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                return net.forward_features(feats).logits.float()

        times = {"before": [], "now": []}
        for _ in range(rounds):  # interleaved: the machine's load hits both alike
            for name, net in (("before", old), ("now", model)):
                times[name].append(timed(run, net, rounds=1) / batch)
        a, b = run(old), run(model)
        before_ms, now_ms = statistics.median(times["before"]), statistics.median(times["now"])
        print(
            f"| {'bf16 autocast' if bf16 else 'fp32'} | {before_ms:.2f} | {now_ms:.2f} | {before_ms / now_ms:.2f}x "
            f"| {(a - b).abs().max().item():.1e} | {(a.argmax(1) == b.argmax(1)).float().mean().item():.1%} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, default=None, help="an older checkout to compare model.py with")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ops(max(args.rounds, 5))
    if args.before:
        networks(args.before, args.rounds, args.batch)


if __name__ == "__main__":
    main()
