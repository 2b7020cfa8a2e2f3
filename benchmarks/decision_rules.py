"""How the video's answer and timeline should be read from its clips: the rules compared on saved clips.

`benchmarks/london_eval.py --json FILE` saves every video's clip probabilities; this script re-decides
each video under every rule of a grid (training.clips.decide_video: neutral's probability weighed
by exp(NEUTRAL_BIAS), probabilities smoothed over +-RADIUS clips, then the vote in which an
expression must hold MIN_RUN consecutive clips to outvote neutral) and prints, per rule, what is
right per class and how restless the timeline is (segment changes per second, the timeline the
service shows: training.clips.merge_short_runs of the decided labels). Nothing is re-run through
the network, so a grid costs seconds. With several biases, each rule also gets the figure of
choosing the bias leave-one-person-out (each person's videos judged under the bias best on the
others'), the honest one where the bias is chosen on the people it is reported on.

    python benchmarks/decision_rules.py --answers runs/bench/talking-fold1.json [--answers more.json ...]
                                        [--radius 0 2 4 8] [--min-run 1 2 3 5] [--neutral-bias 0 1 2 3]
                                        [--json rules.json]

Choose a rule on one set of people and report it on another (docs/real-faces.md).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from training.clips import CLIP_STRIDE, decide_video, label_runs, merge_short_runs


def leave_one_person_out(people: list[str], right: np.ndarray, biases: list[float]) -> dict:
    """An honest figure for choosing the neutral bias on these same people: each person's videos are
    judged under the bias that does best on everyone else's (the smallest such), so no video helps
    choose its own rule. right: (videos, biases), whether each video's answer is right under each
    bias (judge's "right"). Returns the share right and the biases chosen."""
    people = np.asarray(people)
    total, chosen = 0, set()
    for person in sorted(set(people)):
        mine = people == person
        best = int(right[~mine].sum(0).argmax())
        chosen.add(biases[best])
        total += int(right[mine, best].sum())
    return {"overall": total / len(people), "chosen": sorted(chosen)}


def judge(videos: list[dict], classes: list[str], radius: int, min_run: int, bias: float = 0.0) -> dict:
    """Right per wanted class, and timeline changes per second, of one rule over saved videos; "right"
    says which videos (False where no clip had a face)."""
    neutral = classes.index("neutral") if "neutral" in classes else None
    right, total, changes, seconds = defaultdict(int), defaultdict(int), defaultdict(float), defaultdict(float)
    hits = np.zeros(len(videos), dtype=bool)
    for i, v in enumerate(videos):
        probs = np.asarray(v["clip_probabilities"], dtype=np.float64)
        want = v["want"]
        total[want] += 1
        if len(probs) == 0:
            continue
        winner, _, labels = decide_video(
            probs, len(classes), abstain=neutral, radius=radius, min_run=min_run, abstain_bias=bias
        )
        hits[i] = classes[winner] == want
        right[want] += hits[i]
        timeline = merge_short_runs(labels.tolist(), min_run)
        changes[want] += len(label_runs(timeline)) - 1
        seconds[want] += v.get("duration_s") or len(probs) * CLIP_STRIDE / 30
    per_class = {c: right[c] / total[c] for c in total}
    expressive = [per_class[c] for c in per_class if c != "neutral"]
    return {
        "radius": radius,
        "min_run": min_run,
        "neutral_bias": bias,
        "per_class": per_class,
        "neutral": per_class.get("neutral"),
        "expressions_mean": float(np.mean(expressive)) if expressive else None,
        "overall": sum(right.values()) / max(sum(total.values()), 1),
        "calm_changes_per_s": changes["neutral"] / seconds["neutral"] if seconds["neutral"] else None,
        "changes_per_s": sum(changes.values()) / max(sum(seconds.values()), 1e-9),
        "right": hits,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--answers", action="append", required=True, help="a london_eval.py --json file (repeatable)")
    ap.add_argument("--radius", type=int, nargs="+", default=[0, 1, 2, 4, 8, 16])
    ap.add_argument("--min-run", type=int, nargs="+", default=[1, 2, 3, 5, 8])
    ap.add_argument(
        "--neutral-bias",
        type=float,
        nargs="+",
        default=[0.0],
        help="log-prior added to neutral (the service's RAMFER_NEUTRAL_BIAS); with several, each rule also gets "
        "a leave-one-person-out figure for choosing among them",
    )
    ap.add_argument("--json", default=None, help="write every rule's figures here")
    args = ap.parse_args()

    videos, classes = [], None
    for path in args.answers:
        data = json.loads(Path(path).read_text())
        classes = classes or data["classes"]
        if data["classes"] != classes:
            raise SystemExit(f"{path}: other classes than the first file's")
        videos += [v for v in data["videos"] if "clip_probabilities" in v]
    rows = [judge(videos, classes, r, m, b) for r in args.radius for m in args.min_run for b in args.neutral_bias]
    wanted = list(rows[0]["per_class"])
    print(f"{len(videos)} videos from {', '.join(args.answers)}")
    print(
        "| radius | min run | neutral bias | overall | "
        + " | ".join(wanted)
        + " | expressions (mean) | calm changes/s | changes/s |"
    )
    print("|---|---|---|---|" + "---|" * len(wanted) + "---|---|---|")
    for r in rows:
        cells = " | ".join(f"{100 * r['per_class'][c]:.0f}" for c in wanted)
        print(
            f"| {r['radius']} | {r['min_run']} | {r['neutral_bias']:g} | {100 * r['overall']:.1f} | {cells} | "
            f"{100 * (r['expressions_mean'] or 0):.1f} | {r['calm_changes_per_s'] or 0:.2f} | {r['changes_per_s']:.2f} |"
        )
    if len(args.neutral_bias) > 1 and "neutral" in classes:
        print("\nneutral bias chosen leave-one-person-out (each person judged under the bias best on the others):")
        people = [v["id"] for v in videos]
        for r in args.radius:
            for m in args.min_run:
                right = np.stack([row["right"] for row in rows if (row["radius"], row["min_run"]) == (r, m)], axis=1)
                lopo = leave_one_person_out(people, right, args.neutral_bias)  # rows are in --neutral-bias order
                print(
                    f"  radius {r}, min run {m}: overall {100 * lopo['overall']:.1f} %, biases chosen {lopo['chosen']}"
                )
    calm = [
        np.asarray(v["clip_probabilities"]).mean(0)[classes.index("neutral")] for v in videos if v["want"] == "neutral"
    ]
    if calm:  # whatever the rule: how sure the network itself is that a calm talker is calm
        print(
            f"\ncalm videos' mean probability of neutral (their clips' mean, averaged): {np.mean(calm):.2f} over {len(calm)}"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps([{k: v for k, v in row.items() if k != "right"} for row in rows], indent=1)
        )


if __name__ == "__main__":
    main()
