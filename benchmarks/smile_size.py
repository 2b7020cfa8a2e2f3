"""Which smiles are missed: held-out answers against how far each person's smile moves the mouth.

The London set photographs every person "smiling", but some smiles barely move the lips. This
measures each person's smile from the photos themselves, with no model: how far the mouth corners
travel from the neutral photo to the smiling one (training.synthesis.smile.mouth_corner_motion, the
smile morph's own optical flow at the template's corner points), in inter-ocular distances,
outwards plus upwards, averaged over the two corners ("corner pull", training.synthesis.smile.corner_pull).
Then it joins that with the answers of `benchmarks/london_eval.py --json` (one file per London fold, each from a checkpoint
trained without that fold's people) and prints the smiles right per quarter of corner pull, and
every missed smile with its rank (1 = the smallest of the 102).

The other half of the errors, calm faces read as an expression, is set against the neutral
photo's own mouth: how high its corners sit above the line between the lips
(training.synthesis.smile.resting_corner_lift, from the template alone), with the calm faces right per
quarter of that and every wrong one's rank (1 = the most upturned).

Last, how much a re-calibrated line between happy and the rest could get at best: p(happy)
weighted by the one factor that gets the most stills right, chosen on the answers themselves.

    python benchmarks/smile_size.py --answers runs/bench/r3-fold{0,1,2,3,4}-stills.json [--london LONDON_DIR]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from training.synthesis.london import LONDON_ENV, find_london, list_identities
from training.synthesis.smile import corner_pull, resting_corner_lift


def answers_by_want(paths: list[str]) -> dict[str, dict[str, dict]]:
    """wanted label -> identity -> that still's record (answer, mean probabilities), over all the files."""
    answers: dict[str, dict[str, dict]] = {}
    for path in paths:
        for video in json.loads(Path(path).read_text())["videos"]:
            answers.setdefault(video["want"], {})[video["id"]] = video
    return answers


def p_of(record: dict, label: str) -> float:
    return (record["mean_probabilities"] or {}).get(label, 0.0)


def report(measure: dict[str, float], answers: dict[str, dict], want: str, name: str, first: str) -> None:
    """The stills that should read `want`, ordered by `measure` (ascending, or descending where
    first == "largest"): right per quarter, every wrong one with its rank among all the people,
    and the rank correlation of the measure with p(happy)."""
    descending = first == "largest"
    order = sorted(measure, key=measure.get, reverse=descending)
    rank = {face_id: k + 1 for k, face_id in enumerate(order)}
    judged = [i for i in order if i in answers]
    values = list(measure.values())
    print(
        f"\n# {name} of {len(measure)} London people (iod): median {np.median(values):.3f}, "
        f"range {min(values):.3f} to {max(values):.3f}; {len(judged)} {want} stills judged"
    )
    print(f"\n| quarter of the judged (1: {first} {name}) | {name} | read {want} |\n|---|---|---|")
    for q, part in enumerate(np.array_split(judged, 4)):
        if len(part):  # fewer than four stills judged leave quarters empty
            right = sum(answers[i]["expression"] == want for i in part)
            print(f"| {q + 1} | {measure[part[0]]:.3f} to {measure[part[-1]]:.3f} | {right}/{len(part)} |")
    wrong = [i for i in judged if answers[i]["expression"] != want]
    print(f"\n{want} stills read otherwise ({len(wrong)}), with their rank by {name} (1 = {first}):")
    for i in wrong:
        print(
            f"  {i}: {name} {measure[i]:.3f}, rank {rank[i]}, read {answers[i]['expression']} (p happy {p_of(answers[i], 'happy'):.2f})"
        )
    rho = spearmanr([measure[i] for i in judged], [p_of(answers[i], "happy") for i in judged]).statistic
    print(f"Spearman's rho between {name} and p(happy) on the {want} stills: {rho:.2f}")


def best_happy_weight(answers: dict[str, dict[str, dict]]) -> tuple[int, int, float, int]:
    """How far moving the line between happy and the rest could go: every still's mean clip
    probabilities with p(happy) multiplied by a weight w, then the largest. Returns (stills, right
    at w = 1, the best w, right at the best w). The weight is chosen on these very answers, so its
    count is an upper bound for any re-calibration of happy, not a result."""
    records = [
        (want, r["mean_probabilities"])
        for want, by_id in answers.items()
        for r in by_id.values()
        if r["mean_probabilities"]
    ]
    classes = sorted({c for _, probs in records for c in probs})
    probs = np.array([[probs.get(c, 0.0) for c in classes] for _, probs in records])
    want = np.array([classes.index(w) for w, _ in records])
    happy = classes.index("happy")

    def right(w: float) -> int:
        scaled = probs.copy()
        scaled[:, happy] *= w
        return int((scaled.argmax(1) == want).sum())

    weights = np.exp(np.linspace(-5, 5, 201))
    best = max(weights, key=right)  # the first of equals: the one nearest e^-5
    return len(records), right(1.0), float(best), right(best)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--london", default=None, help=f"the London set (default: ${LONDON_ENV})")
    ap.add_argument("--answers", nargs="+", required=True, help="benchmarks/london_eval.py --json files (stills)")
    args = ap.parse_args()
    args.london = str(find_london(args.london))

    ids = list_identities(args.london)
    pull = {face_id: corner_pull(args.london, face_id) for face_id in ids}
    answers = answers_by_want(args.answers)
    report(pull, answers["happy"], "happy", "corner pull", "smallest")
    lift = {face_id: resting_corner_lift(args.london, face_id) for face_id in ids}
    report(lift, answers["neutral"], "neutral", "resting corner lift", "largest")
    n, at_one, w, at_best = best_happy_weight(answers)
    print(
        f"\n# moving the happy line: of {n} stills, argmax of the mean clip probabilities gets {at_one} right; "
        f"p(happy) x {w:.3g}, the best weight chosen on these answers themselves, {at_best} ({at_best / n:.1%}, an upper bound)"
    )


if __name__ == "__main__":
    main()
