"""The paper's protocol on a CK+-sized *short copy*: the form of CK+ the real-data check uses.

Some CK+ copies keep only the last 3 frames of each labelled sequence, as 48x48 gray face crops,
without Landmarks. This script makes such a copy from any CK+-layout tree (the synthetic set, or
your own CK+), so that `python -m training cv` runs on exactly that form, and times it:

    python -m training synth --out data/synth47 --subjects 47 --seed 0     # 329 sequences, like CK+'s 327
    python benchmarks/ckplus_short.py --source data/synth47 --out runs/ckplus-short [--first-folds 1]

It writes the copy to OUT/data, runs `python -m training cv --data OUT/data --out OUT/cv
--folds 10 [--first-folds K]` in a subprocess (the same command a user runs) and prints the
wall time, the training time per fold and per epoch, and the accuracy of the folds run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from training.data import CLASSES, load_ckplus


def write_short_copy(source: Path, dest: Path, frames: int = 3) -> int:
    """The last `frames` face crops of every labelled sequence, 48x48 gray PNGs, plus the
    Emotion files; no Landmarks (so the loader must cope without them). Returns the number of sequences."""
    dataset = load_ckplus(source, progress=False)
    for video in dataset.videos:
        subject, seq = video.name.split("/")
        out = dest / "cohn-kanade-images" / subject / seq
        out.mkdir(parents=True, exist_ok=True)
        kept = video.frames[-frames:]
        first = len(video.frames) - len(kept) + 1
        for i, frame in enumerate(kept):
            cv2.imwrite(
                str(out / f"{subject}_{seq}_{first + i:08d}.png"),
                cv2.resize(frame, (48, 48), interpolation=cv2.INTER_AREA),
            )
        emo = dest / "Emotion" / subject / seq
        emo.mkdir(parents=True, exist_ok=True)
        last = first + len(kept) - 1
        code = CLASSES.index(dataset.classes[video.label]) + 1
        (emo / f"{subject}_{seq}_{last:08d}_emotion.txt").write_text(f"   {code:.7e}\n")
    return len(dataset.videos)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--source", required=True, help="a CK+-layout tree")
    ap.add_argument("--out", required=True)
    ap.add_argument("--variant", default="econvlstm_ram")
    ap.add_argument("--folds", type=int, default=10)
    ap.add_argument("--first-folds", type=int, default=None)
    ap.add_argument("--frames", type=int, default=3)
    args = ap.parse_args()
    out = Path(args.out)
    shutil.rmtree(out / "data", ignore_errors=True)
    n = write_short_copy(Path(args.source), out / "data", args.frames)
    print(f"short copy: {n} sequences x last {args.frames} frames, 48x48 gray, no Landmarks -> {out / 'data'}")
    cmd = [
        sys.executable,
        "-m",
        "training",
        "cv",
        "--data",
        str(out / "data"),
        "--out",
        str(out / "cv"),
        "--variant",
        args.variant,
        "--folds",
        str(args.folds),
        "--cache",
        str(out / "cache"),
        "--quiet",
    ]
    if args.first_folds:
        cmd += ["--first-folds", str(args.first_folds)]
    print("$", " ".join(cmd[1:]).replace("-m training", "python -m training", 1))
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - start
    results = json.loads((out / "cv" / "results.json").read_text())
    r = results["variants"][args.variant]
    folds_run = r["folds_run"]
    epochs = round(float(np.mean(r.get("epochs_per_fold") or [results["train"]["epochs"]])))  # min_steps may add some
    per_fold = r["train_seconds"] / folds_run
    print(
        f"{args.variant}: {folds_run} of {results['folds']} folds in {wall / 60:.1f} min wall "
        f"(training {per_fold:.0f} s per fold, {per_fold / epochs:.1f} s per epoch of {epochs}); "
        f"estimated full {results['folds']}-fold run {per_fold * results['folds'] / 60:.0f} min of training; "
        f"video accuracy on the folds run {100 * r['video_accuracy']:.2f} % ({sum(map(sum, r['confusion']))} videos), "
        f"torch threads {results.get('threads', 'all')}, device {results['device']}"
    )


if __name__ == "__main__":
    main()
