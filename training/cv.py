"""Person-independent k-fold cross-validation (the paper's protocol, section 4.1).

No subject appears in two folds; folds are balanced by class as far as whole subjects allow
(scikit-learn's StratifiedGroupKFold: subjects are groups, video labels the strata), and the
split is fixed by the seed. Each fold trains a fresh network on the other folds and tests on
its own videos; accuracies are then counted over all test videos of all folds together, and
per fold, with the folds' spread (`summarize`).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

from training.checkpoint import describe_start
from training.data import Dataset
from training.model import ExpressionNet, ModelConfig
from training.train import TrainConfig, VideoPrediction, fit, predict_videos
from training.warmstart import StartingPoint, start_from

log = logging.getLogger(__name__)


def make_folds(subjects: list[str], labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold number of every video; a subject's videos all share one fold."""
    n_subjects = len(set(subjects))
    if n_subjects < 2:
        raise ValueError("cross-validation needs at least 2 subjects")
    if k > n_subjects:
        log.warning("only %d subjects: using %d folds instead of %d", n_subjects, n_subjects, k)
        k = n_subjects
    folds = np.empty(len(subjects), dtype=np.int64)
    if np.bincount(labels).max() >= k:
        splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    else:  # every class is smaller than k: nothing to stratify, only keep subjects whole
        splitter = GroupKFold(n_splits=k, shuffle=True, random_state=seed)
    for f, (_, test) in enumerate(splitter.split(np.zeros(len(labels)), labels, groups=subjects)):
        folds[test] = f
    return folds


def clip_accuracy(videos, preds: list[VideoPrediction]) -> float:
    """Each clip's own prediction (the network at the clip's last step) against its video's label:
    the accuracy of the network without the vote, beside the video accuracy that the vote gives."""
    right = sum(int((p.clip_labels == v.label).sum()) for v, p in zip(videos, preds))
    return right / sum(len(p.clip_labels) for p in preds)


def judge(videos, preds: list[VideoPrediction], classes) -> dict:
    """Video accuracy (the vote), clip accuracy (no vote), and per-class recall and the confusion
    matrix (rows true, columns predicted) of the videos' votes."""
    K = len(classes)
    y = np.array([v.label for v in videos])
    yhat = np.array([p.label for p in preds])
    confusion = np.zeros((K, K), dtype=np.int64)
    np.add.at(confusion, (y, yhat), 1)
    support = confusion.sum(1)
    return {
        "videos": len(videos),
        "video_accuracy": float((y == yhat).mean()),
        "clip_accuracy": clip_accuracy(videos, preds),
        "per_class_recall": {
            c: (float(confusion[i, i] / support[i]) if support[i] else None) for i, c in enumerate(classes)
        },
        "confusion": confusion.tolist(),
    }


def spread(values: list[float]) -> dict:
    """Mean, sample standard deviation (None for a single fold), min and max of per-fold accuracies."""
    v = np.array(values, dtype=np.float64)
    return {
        "mean": float(v.mean()),
        "std": float(v.std(ddof=1)) if len(v) > 1 else None,
        "min": float(v.min()),
        "max": float(v.max()),
    }


def summarize(dataset: Dataset, preds: list[VideoPrediction | None], folds: np.ndarray) -> dict:
    """Scores over all the videos that were tested (all of them unless only the first folds ran)
    and over each fold's, and how much the folds' accuracies spread."""
    tested = [i for i, p in enumerate(preds) if p is not None]

    def judged(ids):
        return judge([dataset.videos[i] for i in ids], [preds[i] for i in ids], dataset.classes)

    per_fold = [
        {"fold": int(f) + 1, **judged([i for i in tested if folds[i] == f])} for f in sorted(set(folds[tested]))
    ]
    return {
        **judged(tested),
        "classes": list(dataset.classes),
        "video_accuracy_over_folds": spread([r["video_accuracy"] for r in per_fold]),
        "clip_accuracy_over_folds": spread([r["clip_accuracy"] for r in per_fold]),
        "per_fold": per_fold,
        "fold_video_accuracy": [r["video_accuracy"] for r in per_fold],  # as results.json had it before per_fold
        "fold_videos": [r["videos"] for r in per_fold],
        "folds_run": len(per_fold),
    }


def cross_validate(
    dataset: Dataset,
    variant: str,
    folds: np.ndarray,
    train_cfg: TrainConfig,
    device: torch.device,
    model_overrides: dict | None = None,
    progress: bool = True,
    first_folds: int | None = None,
    compiled: bool = False,
    start: StartingPoint | None = None,
) -> tuple[dict, list[VideoPrediction | None]]:
    """Train and test one variant on every fold (or only the first `first_folds`, a cheaper
    comparison on the same split); returns its summary and every tested video's prediction.
    start: a checkpoint every fold's network starts from (--init) instead of from scratch."""
    preds: list[VideoPrediction | None] = [None] * len(dataset.videos)
    init = None
    seconds, epochs = 0.0, []
    k = int(folds.max() + 1)
    for f in range(k if first_folds is None else min(first_folds, k)):
        train_videos = [v for v, fold in zip(dataset.videos, folds) if fold != f]
        test_ids = np.flatnonzero(folds == f)
        # Each fold starts from its own seeded initialisation, so any fold can be rerun alone.
        torch.manual_seed(train_cfg.seed * 1000 + f)
        cfg = ModelConfig(variant=variant, num_classes=len(dataset.classes), **(model_overrides or {}))
        model = ExpressionNet(cfg)
        if start is not None:  # the same tensors load in every fold: say once what did
            init = start_from(model, start, dataset.classes)
            if f == 0:
                log.info("%s: %s", variant, describe_start(init))
        began = time.perf_counter()
        report = fit(
            model,
            train_videos,
            TrainConfig(**{**train_cfg.to_dict(), "seed": train_cfg.seed * 1000 + f}),
            device,
            progress,
            compiled,
        )
        epochs.append(report["epochs"])
        seconds += time.perf_counter() - began
        fold_preds = predict_videos(model, [dataset.videos[i] for i in test_ids], device, keep_attention=cfg.ram)
        for i, p in zip(test_ids, fold_preds):
            preds[i] = p
        fold = judge([dataset.videos[i] for i in test_ids], fold_preds, dataset.classes)
        log.info(
            "%s fold %d/%d: %d test videos, video accuracy %.3f, clip accuracy %.3f",
            variant,
            f + 1,
            k,
            len(test_ids),
            fold["video_accuracy"],
            fold["clip_accuracy"],
        )
    summary = summarize(dataset, preds, folds)
    summary["train_seconds"] = seconds
    summary["epochs_per_fold"] = epochs  # more than the recipe's where a fold's epochs were short (min_steps)
    summary["compiled"] = compiled  # the seconds depend on it
    summary["init"] = init  # None: trained from scratch, the paper's protocol
    return summary, preds


def write_results(out_dir: Path, results: dict) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
