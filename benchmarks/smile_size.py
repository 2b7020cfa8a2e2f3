"""Which smiles are missed: held-out answers against how far each person's smile moves the mouth.

The London set photographs every person "smiling", but some smiles barely move the lips. This
measures each person's smile from the photos themselves, with no model: how far the mouth corners
travel from the neutral photo to the smiling one (training.photoreal.mouth_corner_motion, the
smile morph's own optical flow at the template's corner points), in inter-ocular distances,
outwards plus upwards, averaged over the two corners ("corner pull"). Then it joins that with
the answers of `benchmarks/london_eval.py --json` (one file per London fold, each from a checkpoint
trained without that fold's people) and prints the smiles right per quarter of corner pull, and
every missed smile with its rank (1 = the smallest of the 102).

The other half of the errors, calm faces read as an expression, is set against the neutral
photo's own mouth: how high its corners sit above the line between the lips
(training.photoreal.resting_corner_lift, from the template alone), with the calm faces right per
quarter of that and every wrong one's rank (1 = the most upturned).

    python benchmarks/smile_size.py --answers runs/bench/r3-fold{0,1,2,3,4}-stills.json [--london ../shared/datasets/london-set]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from training import photoreal


def corner_pull(london: str, face_id: str) -> float:
    """Mean over the two mouth corners of (outward + upward) travel, in inter-ocular distances."""
    (lx, ly), (rx, ry) = photoreal.mouth_corner_motion(london, face_id)
    return float(((-lx - ly) + (rx - ry)) / 2)


def still_answers(paths: list[str], want: str) -> dict[str, dict]:
    """identity -> the record (answer, mean probabilities) of its still that should read `want`."""
    answers = {}
    for path in paths:
        for video in json.loads(Path(path).read_text())["videos"]:
            if video["want"] == want:
                answers[video["id"]] = video
    return answers


def by_quarter(judged: list[str], measure: dict[str, float], answers: dict[str, dict], want: str) -> None:
    """judged is sorted by measure; print each quarter's range and how many read `want`."""
    for q, part in enumerate(np.array_split(judged, 4)):
        if not len(part):  # fewer than four stills judged
            continue
        right = sum(answers[i]["expression"] == want for i in part)
        print(f"| {q + 1} | {measure[part[0]]:.3f} to {measure[part[-1]]:.3f} | {right}/{len(part)} |")


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho, ties broken by input order (probabilities of 0.0 tie): read it to one decimal."""
    return float(np.corrcoef(np.argsort(np.argsort(x)), np.argsort(np.argsort(y)))[0, 1])


def p_of(record: dict, label: str) -> float:
    return (record["mean_probabilities"] or {}).get(label, 0.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--london", default=str(photoreal.DEFAULT_LONDON_DIR))
    ap.add_argument("--answers", nargs="+", required=True, help="benchmarks/london_eval.py --json files (stills)")
    args = ap.parse_args()

    ids = photoreal.list_identities(args.london)
    pull = {face_id: corner_pull(args.london, face_id) for face_id in ids}
    rank = {face_id: k + 1 for k, face_id in enumerate(sorted(ids, key=pull.get))}
    answers = still_answers(args.answers, "happy")
    judged = sorted(answers, key=pull.get)
    print(f"# {len(ids)} London people's smiles by corner pull (iod): median {np.median(list(pull.values())):.3f}, "
          f"range {min(pull.values()):.3f} to {max(pull.values()):.3f}; {len(judged)} smiling stills judged")
    print("\n| quarter of the judged smiles (1: smallest pull) | corner pull | read happy |\n|---|---|---|")
    by_quarter(judged, pull, answers, "happy")
    missed = [i for i in judged if answers[i]["expression"] != "happy"]
    print(f"\nmissed smiles ({len(missed)}), with their rank among the {len(ids)} by corner pull (1 = smallest):")
    for i in missed:
        print(f"  {i}: pull {pull[i]:.3f}, rank {rank[i]}, read {answers[i]['expression']} (p happy {p_of(answers[i], 'happy'):.2f})")
    rho = spearman(np.array([pull[i] for i in judged]), np.array([p_of(answers[i], "happy") for i in judged]))
    print(f"Spearman's rho between corner pull and p(happy) on the smiling stills: {rho:.2f}")

    lift = {face_id: photoreal.resting_corner_lift(args.london, face_id) for face_id in ids}
    lift_rank = {face_id: k + 1 for k, face_id in enumerate(sorted(ids, key=lift.get, reverse=True))}
    calm = still_answers(args.answers, "neutral")
    judged = sorted(calm, key=lift.get, reverse=True)
    print(f"\n# neutral photos by resting corner lift (iod, > 0: corners above the lips' line): median "
          f"{np.median(list(lift.values())):.3f}; {len(judged)} neutral stills judged")
    print("\n| quarter of the judged calm faces (1: most upturned) | corner lift | read neutral |\n|---|---|---|")
    by_quarter(judged, lift, calm, "neutral")
    wrong = [i for i in judged if calm[i]["expression"] != "neutral"]
    print(f"\ncalm faces read as an expression ({len(wrong)}), with their rank among the {len(ids)} by corner lift (1 = most upturned):")
    for i in wrong:
        print(f"  {i}: lift {lift[i]:.3f}, rank {lift_rank[i]}, read {calm[i]['expression']} (p happy {p_of(calm[i], 'happy'):.2f})")
    rho = spearman(np.array([lift[i] for i in judged]), np.array([p_of(calm[i], "happy") for i in judged]))
    print(f"Spearman's rho between resting corner lift and p(happy) on the neutral stills: {rho:.2f}")


if __name__ == "__main__":
    main()
