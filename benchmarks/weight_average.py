"""A weight average of two checkpoints of the same network, written as a checkpoint of its own: every
floating-point tensor (1 - W) * A + W * B (integer buffers, e.g. BatchNorm's step count, are B's).

Two fine-tuning steps from one start lie in one basin, where the average of their weights is often a model
that keeps some of what each learned (Wortsman et al. 2022, "model soups"; WiSE-FT). It was tried for
served-v9's lost London smiles (docs/history.md, served-v10): judge the result like any checkpoint, e.g.

    python benchmarks/weight_average.py runs/served-v8 runs/served-v9 --weight 0.5 --out runs/average-0.5
    python benchmarks/ferplus_eval.py FERPLUS_DIR/FER2013Valid --model runs/average-0.5 --neutral-bias 0 0.5 1
    python benchmarks/london_eval.py --model runs/average-0.5 --fold 0

The record (config.json, card) is B's, renamed, without B's measured metrics: they are not the average's.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.checkpoint import crop_config, load_checkpoint, save_checkpoint

NOT_RECORD = ("format", "model", "crop", "classes", "clip", "weights_sha256", "parameters", "metrics")


def weight_average(a_dir, b_dir, weight: float, out: Path) -> dict:
    """Write the average into `out`; returns its config."""
    model_a, config_a = load_checkpoint(a_dir)
    model_b, config_b = load_checkpoint(b_dir)
    if config_a["model"] != config_b["model"] or config_a["classes"] != config_b["classes"]:
        raise SystemExit(f"{a_dir} and {b_dir} are not the same network with the same classes")
    a, b = model_a.state_dict(), model_b.state_dict()
    model_b.load_state_dict({k: (1 - weight) * a[k] + weight * b[k] if b[k].is_floating_point() else b[k] for k in b})
    record = {k: v for k, v in config_b.items() if k not in NOT_RECORD}
    record["name"] = f"{config_a.get('name')} x {1 - weight:g} + {config_b.get('name')} x {weight:g}"
    return save_checkpoint(out, model_b, crop_config(config_b), config_b["classes"], record)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("a", help="a checkpoint folder (or a bundled name)")
    ap.add_argument("b", help="another of the same network")
    ap.add_argument("--weight", type=float, default=0.5, help="B's share, 0..1")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    if not 0 <= args.weight <= 1:
        ap.error("--weight is B's share: between 0 and 1")
    config = weight_average(args.a, args.b, args.weight, args.out)
    print(f"wrote {args.out}: {config['name']}, sha256 {config['weights_sha256'][:12]}")


if __name__ == "__main__":
    main()
