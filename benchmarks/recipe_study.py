"""Training recipes compared on a small CK+-layout set: which options help a set of a few hundred
short sequences (CK+'s size and form), each variant one `training cv` run on the same folds.

Each named variant is one `python -m training cv` run in a subprocess (the command a user runs) on
the same data, split and seed, over the first K folds; the table gives each its video accuracy
over the folds run, its per-class recall and its training time. Runs are long, so a variant whose
results.json exists is read back rather than run again (delete its folder to rerun it).

    python -c "from pathlib import Path; from benchmarks.ckplus_short import write_short_copy as w; \\
               w(Path('data/photoreal'), Path('runs/photoreal-short'))"      # the 3-frame, 48 px form of a CK+ tree
    python benchmarks/recipe_study.py --data runs/photoreal-short --ckplus-proportions runs/photoreal-short-ckp \\
        --out runs/recipe-photoreal --first-folds 2 --compile --init-from training/models/synthetic-7class default init sampler

On a GPU, `--common-flags '--device cuda' --jobs 4` runs four variants at once, each one's output in
OUT/NAME.log (docs/training.md: all ten folds of a CK+-sized set in minutes).

A variant's folder is OUT/NAME; its flags are VARIANTS[NAME] (added to the common ones), so the
same name always means the same recipe (results made before a default changed are read back as
they are: delete the folder).
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from training.data import CLASSES, find_ckplus

# CK+'s 327 labelled sequences by class (anger, contempt, disgust, fear, happy, sadness, surprise)
CKPLUS_COUNTS = {"anger": 45, "contempt": 18, "disgust": 59, "fear": 25, "happy": 69, "sadness": 28, "surprise": 83}

# name -> the flags it adds to the default recipe; "{init}" is --init-from
VARIANTS = {
    "default": [],
    "init": ["--init", "{init}"],
    "sampler": ["--balance", "sampler"],
    "no-balance": ["--balance", "none"],
    "smooth0.1": ["--label-smoothing", "0.1"],
    "no-augment": ["--no-augment"],
    "epochs15": ["--epochs", "15"],
    "epochs50": ["--epochs", "50"],
    "init-epochs15": ["--init", "{init}", "--epochs", "15"],
    "init-lr1e-3": ["--init", "{init}", "--lr", "1e-3"],
    "epochs60": ["--epochs", "60"],
    "epochs100": ["--epochs", "100"],
    "lr1e-3": ["--lr", "1e-3"],
    "init-epochs60": ["--init", "{init}", "--epochs", "60"],
    "sampler-epochs60": ["--balance", "sampler", "--epochs", "60"],
}


def ckplus_proportions(source: Path, dest: Path, seed: int = 0) -> dict:
    """A copy of a CK+-layout tree (a short copy: images and Emotion, no Landmarks) keeping, by a seeded
    draw, only as many sequences of each class as CK+'s proportions allow (the largest class kept whole):
    a set as unbalanced as CK+, so that --balance has something to even out. Returns the counts kept."""
    by_class: dict[int, list[str]] = {}
    for seq in find_ckplus(source):  # the labelled sequences, as the loader reads them
        by_class.setdefault(seq.code, []).append(seq.name)
    code = {name: CLASSES.index(name) + 1 for name in CKPLUS_COUNTS}  # the Emotion files' numbers
    scale = min(len(by_class.get(code[name], [])) / n for name, n in CKPLUS_COUNTS.items())
    rng = np.random.default_rng(seed)
    kept = {}
    for name in CKPLUS_COUNTS:
        names = by_class.get(code[name], [])
        keep = round(CKPLUS_COUNTS[name] * scale)
        for seq in sorted(rng.choice(names, size=keep, replace=False)) if keep else []:
            for part in ("cohn-kanade-images", "Emotion"):
                shutil.copytree(source / part / seq, dest / part / seq)
        kept[name] = keep
    return kept


def flags_of(name: str, init: str | None) -> list[str]:
    if name not in VARIANTS:
        raise SystemExit(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}")
    flags = VARIANTS[name]
    if "{init}" in flags and not init:
        raise SystemExit(f"variant {name} needs --init-from CHECKPOINT")
    return [init if f == "{init}" else f for f in flags]


def cv_command(name: str, args) -> list[str]:
    out = Path(args.out) / name
    cmd = [
        sys.executable,
        "-m",
        "training",
        "cv",
        "--data",
        args.data,
        "--out",
        str(out),
        "--folds",
        str(args.folds),
        "--first-folds",
        str(args.first_folds),
        "--seed",
        str(args.seed),
        "--threads",
        str(args.threads),
        "--quiet",
        *flags_of(name, args.init_from),
    ]
    if args.cache:
        cmd += ["--cache", args.cache]
    if args.compile:
        cmd.append("--compile")
    cmd += shlex.split(args.common_flags)  # after the variant's own: the same for every variant
    return cmd


def run_variants(names: list[str], args) -> None:
    """Runs the variants whose results.json is missing, `args.jobs` at a time (on a GPU several small
    runs share the device; each then writes its output to OUT/NAME.log, whose fold lines survive
    a run that is stopped)."""
    todo = [n for n in names if not (Path(args.out) / n / "results.json").is_file()]
    running: list[tuple[str, subprocess.Popen, float]] = []
    while todo or running:
        while todo and len(running) < args.jobs:
            name = todo.pop(0)
            cmd = cv_command(name, args)
            print("$", shlex.join(["python", *cmd[1:]]), flush=True)
            if args.jobs > 1:
                Path(args.out).mkdir(parents=True, exist_ok=True)
                with open(Path(args.out) / f"{name}.log", "w") as log:  # the child keeps its own copy of the file
                    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
            else:
                proc = subprocess.Popen(cmd)
            running.append((name, proc, time.perf_counter()))
        time.sleep(0.2)
        for item in [r for r in running if r[1].poll() is not None]:
            name, proc, start = item
            running.remove(item)
            if proc.returncode:
                for _, other, _ in running:
                    other.terminate()
                raise SystemExit(f"variant {name} failed (exit {proc.returncode})")
            # wall time beside the training time: it adds loading and, with --compile, compiling
            (Path(args.out) / name / "wall_seconds.txt").write_text(f"{time.perf_counter() - start:.0f}\n")


FOLD_LINE = re.compile(r"fold (\d+)/(\d+): (\d+) test videos, video accuracy ([\d.]+)")  # training.cv's log line


def row(name: str, results: Path, init: str | None) -> str:
    r = json.loads(results.read_text())
    v = r["variants"]["econvlstm_ram"]
    cm = v["confusion"]  # per class right / n: on a few dozen test videos a recall is a handful of them
    n = sum(map(sum, cm))
    right = sum(cm[i][i] for i in range(len(cm)))
    recall = " ".join(f"{c[:3]} {cm[i][i]}/{sum(cm[i])}" for i, c in enumerate(v["classes"]))
    per_fold = (
        " ".join(f"{round(f['video_accuracy'] * f['videos'])}/{f['videos']}" for f in v.get("per_fold", [])) or "-"
    )
    wall = results.parent / "wall_seconds.txt"
    seconds = f"{v['train_seconds']:.0f}" + (f" ({wall.read_text().strip()})" if wall.is_file() else "")
    sd = v.get("video_accuracy_over_folds", {}).get("std")  # None for one fold (or a run written before spreads)
    folds = f"{v['folds_run']} of {r['folds']}" + (f", sd {100 * sd:.1f}" if sd is not None else "")
    return (
        f"| {name} | `{flags_label(name, init)}` | {100 * right / n:.1f} % ({right} / {n}) | {folds} "
        f"| {recall} | {per_fold} | {seconds} |"
    )


def stopped_row(name: str, log: Path, init: str | None) -> str | None:
    """A variant stopped before its results.json (a lent machine's time ran out): the folds its log says
    it finished, which every variant runs in the same order, so they compare on the same test videos."""
    folds = [(int(k), int(of), int(n), float(acc)) for k, of, n, acc in FOLD_LINE.findall(log.read_text())]
    if not folds:
        return None
    right = [round(n * acc) for _, _, n, acc in folds]
    n = sum(f[2] for f in folds)
    per_fold = " ".join(f"{r}/{f[2]}" for r, f in zip(right, folds))
    return (
        f"| {name} | `{flags_label(name, init)}` | {100 * sum(right) / n:.1f} % ({sum(right)} / {n}) "
        f"| {len(folds)} of {folds[0][1]}, stopped | - | {per_fold} | - |"
    )


def flags_label(name: str, init: str | None) -> str:
    return " ".join(flags_of(name, init)).replace(init or "\0", "INIT") or "(none)"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="a CK+-layout tree (e.g. a short copy)")
    ap.add_argument("--out", required=True, help="one folder per variant under it")
    ap.add_argument("--folds", type=int, default=10)
    ap.add_argument("--first-folds", type=int, default=2, metavar="K")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--jobs", type=int, default=1, help="variants run at once (a GPU has room for several)")
    ap.add_argument("--cache", default=None)
    ap.add_argument(
        "--common-flags",
        default="",
        metavar="FLAGS",
        help="more `training cv` flags for every variant, one quoted string (e.g. '--align')",
    )
    ap.add_argument("--init-from", default=None, metavar="CHECKPOINT", help="what the variants with --init start from")
    ap.add_argument(
        "--ckplus-proportions",
        metavar="DIR",
        default=None,
        help="first write DIR, the --data tree cut to CK+'s class proportions (unless DIR exists), and study that",
    )
    ap.add_argument("--table-only", action="store_true", help="run nothing: the table of the variants already done")
    ap.add_argument("variants", nargs="*", default=list(VARIANTS))
    args = ap.parse_args(argv)
    if args.ckplus_proportions:
        if not Path(args.ckplus_proportions).is_dir():
            kept = ckplus_proportions(Path(args.data), Path(args.ckplus_proportions), args.seed)
            print(
                f"{args.ckplus_proportions}: {sum(kept.values())} sequences of {args.data}, CK+'s proportions: {kept}"
            )
        args.data = args.ckplus_proportions
    if not args.table_only:
        run_variants(args.variants, args)
    print(
        "| variant | flags | video accuracy (right / n) | folds | per-class recall (right/n) | per fold (right/n) "
        "| training s (wall s) |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in args.variants:
        results, log = Path(args.out) / name / "results.json", Path(args.out) / f"{name}.log"
        line = (
            row(name, results, args.init_from)
            if results.is_file()
            else (stopped_row(name, log, args.init_from) if log.is_file() else None)
        )
        if line:
            print(line)


if __name__ == "__main__":
    main()
