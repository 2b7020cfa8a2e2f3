"""Fit the served checkpoint's temperature on held-out people's clips, and say what it does.

Reads benchmark answer files (`london_eval.py --json`, `studio_shift.py --json`): every face clip
with the label its video should have, and the network's own probabilities. The temperature T
(training/calibration.py) is fitted on the London held-out people's clips only; the Canada set's
clips (another studio, never trained on, never fitted on) are the check. Prints, for each part,
the clips, their accuracy, the negative log-likelihood and the expected calibration error (ECE,
10 bins) at T = 1 and at the fitted T, and how many clips the network gave p >= 0.95 to while
wrong. A temperature changes no clip's label, so accuracy and the service's answers stay.

    python benchmarks/calibrate.py --answers studio.json [--answers talking.json ...]
                                   [--figure docs/calibration.png] [--write MODEL_DIR]

--figure draws the reliability diagrams (before and after, fit and check). --write records T in
the checkpoint's config.json ("calibration") and remakes its model card; the service reports
probabilities at that temperature from then on.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.calibration import apply_temperature, expected_calibration_error, fit_temperature, nll, reliability

SURE = 0.95


def clips_of(paths: list[str]) -> tuple[list[str], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """(classes, {part name: (probabilities (N, K), labels (N,))}), parts "london <kind>" and "canada"."""
    classes, parts = None, {}
    for path in paths:
        data = json.loads(Path(path).read_text())
        if classes is None:
            classes = data["classes"]
        elif data["classes"] != classes:
            sys.exit(f"{path}: classes {data['classes']} differ from {classes}")
        kind = data.get("kind", "answers")
        for v in data["videos"]:
            if v["want"] not in classes or not v.get("clip_probabilities"):
                continue
            name = "canada" if v.get("set") == "canada" else f"london {v.get('kind', kind)}"
            p, y = parts.setdefault(name, ([], []))
            p += v["clip_probabilities"]
            y += [classes.index(v["want"])] * len(v["clip_probabilities"])
    return classes, {k: (np.asarray(p, np.float64), np.asarray(y)) for k, (p, y) in parts.items()}


def summary(p: np.ndarray, y: np.ndarray) -> dict:
    return {
        "clips": len(y),
        "accuracy": round(float((p.argmax(1) == y).mean()), 4),
        "nll": round(nll(p, y), 4),
        "ece": round(expected_calibration_error(p, y), 4),
        "sure_and_wrong": int(((p.max(1) >= SURE) & (p.argmax(1) != y)).sum()),
    }


def figure(path: Path, parts: dict, temperature: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(parts), figsize=(4 * len(parts), 4), squeeze=False)
    for ax, (name, (p, y)) in zip(axes[0], parts.items()):
        for t, style in ((1.0, "o--"), (temperature, "s-")):
            rows = [r for r in reliability(apply_temperature(p, t), y) if r["clips"]]
            ece = expected_calibration_error(apply_temperature(p, t), y)
            ax.plot(
                [r["confidence"] for r in rows],
                [r["accuracy"] for r in rows],
                style,
                label=f"T = {t:.2f}: ECE {ece:.3f}",
            )
        ax.plot([0, 1], [0, 1], color="gray", lw=0.8)
        ax.set(
            title=f"{name} ({len(y)} clips)",
            xlabel="confidence (top class's probability)",
            ylabel="accuracy",
            xlim=(0, 1),
            ylim=(0, 1),
        )
        ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--answers", action="append", required=True, help="a london_eval.py or studio_shift.py --json file (repeatable)"
    )
    ap.add_argument("--figure", default=None, help="write reliability diagrams to this PNG")
    ap.add_argument("--write", default=None, metavar="MODEL_DIR", help="record the temperature in this checkpoint")
    args = ap.parse_args()

    _classes, parts = clips_of(args.answers)
    fit = [k for k in parts if k.startswith("london")]
    if not fit:
        sys.exit("no London held-out clips to fit on")
    p_fit = np.concatenate([parts[k][0] for k in fit])
    y_fit = np.concatenate([parts[k][1] for k in fit])
    t = fit_temperature(p_fit, y_fit)
    parts = (
        {"fit: " + " + ".join(fit): (p_fit, y_fit)}
        | {k: v for k, v in parts.items() if not k.startswith("london")}
        | ({k: parts[k] for k in fit} if len(fit) > 1 else {})
    )
    print(f"temperature fitted on {len(y_fit)} London held-out clips: T = {t:.3f}\n")
    print("| clips | part | accuracy | NLL at T=1 -> T | ECE at T=1 -> T | wrong at p >= 0.95, T=1 -> T |")
    print("|---|---|---|---|---|---|")
    record = {}
    for name, (p, y) in parts.items():
        a, b = summary(p, y), summary(apply_temperature(p, t), y)
        record[name] = {"before": a, "after": b}
        print(
            f"| {a['clips']} | {name} | {a['accuracy']:.3f} | {a['nll']:.3f} -> {b['nll']:.3f} | {a['ece']:.3f} -> {b['ece']:.3f} | "
            f"{a['sure_and_wrong']} -> {b['sure_and_wrong']} |"
        )
    if args.figure:
        figure(Path(args.figure), parts, t)
        print(f"\nwrote {args.figure}")
    if args.write:
        from training.checkpoint import read_config, write_record

        config = read_config(args.write)
        config["calibration"] = {
            "temperature": round(t, 4),
            "fitted_on": f"{len(y_fit)} face clips of London held-out people ({', '.join(fit)}): "
            f"python benchmarks/calibrate.py " + " ".join(f"--answers {Path(a).name}" for a in args.answers),
            "ece": {
                name: {"before": r["before"]["ece"], "after": r["after"]["ece"], "clips": r["before"]["clips"]}
                for name, r in record.items()
            },
        }
        write_record(args.write, config)
        print(f"recorded T = {t:.4f} in {args.write}/config.json")


if __name__ == "__main__":
    main()
