"""Train one checkpoint per London fold, side by side on one machine (a GPU's), within a deadline.

The served checkpoint holds out London fold 0 (training.synthesis.london.split_identities); its 90.5 % on
those 21 people is one small sample. Training the same recipe with each other fold held out in
turn (`python -m training train --london-fold K`) and judging every checkpoint on its own
held-out people (`benchmarks/london_eval.py --fold K --model RUN/foldK`) gives the recipe's
person-independent accuracy over all 102 people, and a place to choose inference options
on people other than fold 0's.

The folds train as concurrent processes, each with its share of the CPU cores (this small
network's training is bound by the CPU that feeds and launches it: on an H200 one fold alone
ran at 14 s an epoch, about 5 times this project's 2-core machine). The first fold named has
the highest priority: while the progress bars' estimates say some fold would end after
--deadline, the lowest-priority one still running is stopped (never the last one), so the
others finish inside the machine's time.

    python -m training synth --photoreal LONDON --out data/photoreal-held --only-held-out --seed 0
    python -m training pack --data data/synth40 --data data/photoreal --data data/photoreal-held --neutral \\
        --out runs/pack-r3-all.npz
    python benchmarks/london_folds.py --pack runs/pack-r3-all.npz --folds 1 2 3 4 --out runs/folds --deadline 480 \\
        [-- --epochs 30 ...]   # anything after -- goes to every `training train`
    python benchmarks/london_eval.py --model runs/folds/fold1 --fold 1

Writes RUN/foldK/ (a checkpoint, as `training train` writes it), RUN/foldK.log and RUN/summary.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REMAINING = re.compile(r"(\d+)/(\d+) \[[\d:]+<(?:(\d+):)?(\d+):(\d+)")  # tqdm: "3/30 [00:39<05:51"


def progress(log: Path) -> tuple[int, int, float] | None:
    """(epochs done, epochs, seconds left) from the last progress bar in a training log."""
    try:
        text = log.read_text(errors="replace")
    except FileNotFoundError:
        return None
    found = REMAINING.findall(text)
    if not found:
        return None
    done, total, h, m, s = found[-1]
    return int(done), int(total), int(h or 0) * 3600 + int(m) * 60 + int(s)


def main() -> None:
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pack", required=True, help="a pack of the drawn and photo-real sets of all London people")
    ap.add_argument("--folds", type=int, nargs="+", default=[1, 2, 3, 4, 0], help="in priority order")
    ap.add_argument("--out", required=True)
    ap.add_argument("--london", default=None, help="the London set (for its folds)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--deadline", type=float, default=None, help="seconds from now by which every kept fold must end")
    ap.add_argument("--poll", type=float, default=15.0)
    args = ap.parse_args(argv)

    if "--threads" not in extra:
        # torch's CPU threads default to every core in every process: five folds on 16 cores ran at
        # 110 s an epoch each (load 53) where one alone ran at 14 s (docs/history.md, "Training on a lent GPU")
        extra = [*extra, "--threads", str(max(1, (os.cpu_count() or 1) // len(args.folds)))]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    running = {}
    for k in args.folds:
        cmd = [
            sys.executable,
            "-m",
            "training",
            "train",
            "--data",
            args.pack,
            "--neutral",
            "--london-fold",
            str(k),
            "--seed",
            str(args.seed),
            "--out",
            str(out / f"fold{k}"),
            *(["--london", args.london] if args.london else []),
            *extra,
        ]
        log = out / f"fold{k}.log"
        running[k] = (subprocess.Popen(cmd, cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT), log)
        print(f"fold {k}: {' '.join(cmd)}", flush=True)
    status, last_stop = {}, 0.0
    while running:
        time.sleep(args.poll)
        now = time.monotonic() - start
        for k, (proc, _) in list(running.items()):
            if proc.poll() is not None:
                status[k] = {"returncode": proc.returncode, "seconds": round(now)}
                del running[k]
        bars = {k: progress(log) for k, (_, log) in running.items()}
        ends = {k: now + p[2] for k, p in bars.items() if p and p[0] > 0}
        print(f"{now:5.0f} s: " + ", ".join(f"fold {k} {p[:2] if p else '-'}" for k, p in bars.items()), flush=True)
        # the highest-priority fold is never stopped: there would be no one left to free the machine for
        if (
            args.deadline
            and len(running) > 1
            and ends
            and max(ends.values()) > args.deadline
            and now - last_stop > 2 * args.poll
        ):
            k = [k for k in args.folds if k in running][-1]  # the lowest priority still running
            running[k][0].kill()
            running[k][0].wait()
            status[k] = {
                "returncode": None,
                "stopped_at": round(now),
                "why": f"projected end {max(ends.values()):.0f} s > deadline",
            }
            del running[k]
            last_stop = now
            print(
                f"stopped fold {k}: the folds would end at {max(ends.values()):.0f} s, after the deadline", flush=True
            )
    (out / "summary.json").write_text(
        json.dumps(
            {
                "folds": {str(k): status[k] for k in args.folds},
                "extra_args": extra,
                "seconds": round(time.monotonic() - start),
            },
            indent=1,
        )
        + "\n"
    )
    print(json.dumps(status), flush=True)


if __name__ == "__main__":
    main()
