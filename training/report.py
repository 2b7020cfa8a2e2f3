"""The cross-validation's figures and table, shaped like the paper's Table 1, Fig. 3 and Fig. 4."""

from __future__ import annotations

from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from training.checkpoint import describe_start
from training.cv import spread
from training.data import Dataset
from training.train import VideoPrediction
from training.visualize import heat_overlay

PAPER_ACCURACY = {"convlstm": 86.85, "convlstm_ram": 92.97, "econvlstm": 90.21, "econvlstm_ram": 95.11}
TITLES = {
    "convlstm": "ConvLSTM",
    "convlstm_ram": "ConvLSTM + RAM",
    "econvlstm": "Enhanced ConvLSTM",
    "econvlstm_ram": "Enhanced ConvLSTM + RAM",
}


def markdown_table(results: dict) -> str:
    """Table 1's accuracies with the folds' spread, per-class recall, and where the networks started."""
    lines = [
        f"Person-independent {results['folds']}-fold cross-validation on {results['data']['root']} "
        f"({results['data']['videos']} videos, {results['data']['subjects']} subjects). Video accuracy is the "
        "vote of a video's clips; clip accuracy scores each clip's own prediction, without the vote.",
        *init_notes(results),  # before the table, whose Paper column such runs do not compare with
        "",
        "| Method | Folds run | Video accuracy (vote) | Video accuracy per fold: mean ± std (min–max) | Clip accuracy (no vote) "
        "| Paper (CK+) | Train time |",
        "|---|---|---|---|---|---|---|",
    ]
    k = results["folds"]
    for variant, r in results["variants"].items():
        lines.append(
            f"| {TITLES[variant]} | {r.get('folds_run', k)} of {k} | {100 * r['video_accuracy']:.2f} % "
            f"| {fold_spread(r)} | {100 * r['clip_accuracy']:.2f} % "
            f"| {PAPER_ACCURACY[variant]:.2f} % | {r['train_seconds'] / 60:.1f} min |"
        )
    runs = {r.get("folds_run", k) for r in results["variants"].values()}
    if len(runs) > 1 and results.get("fold_videos"):  # some variants ran fewer folds: compare them on those
        n = min(runs)
        sizes = np.array(results["fold_videos"][:n])
        lines += [
            "",
            f"On the folds every variant ran (1 to {n}, {sizes.sum()} test videos):",
            "",
            "| Method | Video accuracy (vote), folds 1 to " + str(n) + " |",
            "|---|---|",
        ]
        for variant, r in results["variants"].items():
            acc = float(np.dot(r["fold_video_accuracy"][:n], sizes) / sizes.sum())
            lines.append(f"| {TITLES[variant]} | {100 * acc:.2f} % |")
    lines += recall_table(results["variants"])
    return "\n".join(lines) + "\n"


def fold_spread(r: dict) -> str:
    """ "95.0 ± 3.1 % (90.0–100.0)" of a variant's per-fold video accuracies (std: none for one fold)."""
    s = r.get("video_accuracy_over_folds") or spread(r["fold_video_accuracy"])  # results.json from before it was kept
    std = f" ± {100 * s['std']:.1f}" if s["std"] is not None else ""
    return f"{100 * s['mean']:.1f}{std} % ({100 * s['min']:.1f}–{100 * s['max']:.1f})"


def recall_table(variants: dict) -> list[str]:
    """Per-class recall of the videos' votes, one row per variant (the confusion matrices are in confusion.png)."""
    classes = next(iter(variants.values()))["classes"]
    lines = [
        "",
        "Per-class recall (video vote, all tested videos):",
        "",
        "| Method | " + " | ".join(classes) + " |",
        "|---|" + "---|" * len(classes),
    ]
    for variant, r in variants.items():
        cells = ["–" if r["per_class_recall"].get(c) is None else f"{r['per_class_recall'][c]:.2f}" for c in classes]
        lines.append(f"| {TITLES[variant]} | " + " | ".join(cells) + " |")
    return lines


def init_notes(results: dict) -> list[str]:
    """Where the networks started: the paper trains from scratch, so a run from a checkpoint says so."""
    started = {v: r["init"] for v, r in results["variants"].items() if r.get("init")}
    if not started:
        return []
    lines = [
        "",
        "**Not the paper's protocol**: these networks started from a checkpoint's weights (`--init`), "
        "not from scratch:",
        "",
    ]
    return lines + [f"* {TITLES[v]}: {describe_start(init)}" for v, init in started.items()]


def confusion_png(path: Path, results: dict) -> None:
    """One row-normalised confusion matrix per variant, side by side (Fig. 3)."""
    variants = list(results["variants"])
    fig, axes = plt.subplots(1, len(variants), figsize=(4.2 * len(variants), 4.2), squeeze=False)
    for ax, variant in zip(axes[0], variants):
        r = results["variants"][variant]
        cm = np.array(r["confusion"], dtype=np.float64)
        norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
        ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        classes = r["classes"]
        ax.set_xticks(range(len(classes)), classes, rotation=60, fontsize=8)
        ax.set_yticks(range(len(classes)), classes, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{TITLES[variant]}\n{100 * r['video_accuracy']:.1f} %", fontsize=9)
        for i in range(len(classes)):
            for j in range(len(classes)):
                if cm[i, j]:
                    ax.text(
                        j,
                        i,
                        f"{100 * norm[i, j]:.0f}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black",
                    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def attention_png(path: Path, dataset: Dataset, preds: dict[str, list[VideoPrediction]], size: int = 120) -> bool:
    """Fig. 4: per class, one test video's face at its peak (last) frame with each RAM
    variant's attention map of the last clip at its last step. Returns False if no RAM variant ran."""
    tested = lambda v, i: preds[v][i] is not None  # noqa: E731  (a run of only the first folds tests fewer videos)
    ram_variants = [v for v in preds if any(p is not None and p.attention is not None for p in preds[v])]
    if not ram_variants:
        return False
    rows = []
    for c in range(len(dataset.classes)):
        ids = [i for i, v in enumerate(dataset.videos) if v.label == c and all(tested(r, i) for r in ram_variants)]
        if not ids:
            continue
        # the video most variants got right, the longest among equals (its peak is clearest)
        best = max(
            ids, key=lambda i: (sum(preds[v][i].label == c for v in ram_variants), len(dataset.videos[i].frames))
        )
        face = dataset.videos[best].frames[-1]
        cells = [cv2.cvtColor(cv2.resize(face, (size, size), interpolation=cv2.INTER_CUBIC), cv2.COLOR_GRAY2BGR)]
        cells += [heat_overlay(face, preds[v][best].attention[-1, -1], size) for v in ram_variants]
        rows.append((dataset.classes[c], cells))
    fig, axes = plt.subplots(
        len(ram_variants) + 1, len(rows), figsize=(1.6 * len(rows), 1.7 * (len(ram_variants) + 1)), squeeze=False
    )
    for j, (name, cells) in enumerate(rows):
        for i, cell in enumerate(cells):
            ax = axes[i][j]
            ax.imshow(cv2.cvtColor(cell, cv2.COLOR_BGR2RGB))
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name, fontsize=9)
            if j == 0:
                ax.set_ylabel("face" if i == 0 else TITLES[ram_variants[i - 1]].replace(" + ", "\n+ "), fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
