"""Which smiles are missed: held-out answers against how far each person's smile moves the mouth.

The London set photographs every person "smiling", but some smiles barely move the lips. This
measures each person's smile from the photos themselves, with no model: how far the mouth corners
travel from the neutral photo to the smiling one (training.photoreal.mouth_corner_motion, the
smile morph's own optical flow at the template's corner points), in inter-ocular distances,
outwards plus upwards, averaged over the two corners ("corner pull"). Then it joins that with
the answers of `benchmarks/london_eval.py --json` (one file per London fold, each from a checkpoint
trained without that fold's people) and prints the smiles right per quarter of corner pull, and
every missed smile with its rank (1 = the smallest of the 102).

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


def smile_answers(paths: list[str]) -> dict[str, dict]:
    """identity -> its smiling still's record (answer, mean probabilities), over all the files."""
    answers = {}
    for path in paths:
        for video in json.loads(Path(path).read_text())["videos"]:
            if video["want"] == "happy":
                answers[video["id"]] = video
    return answers


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--london", default=str(photoreal.DEFAULT_LONDON_DIR))
    ap.add_argument("--answers", nargs="+", required=True, help="benchmarks/london_eval.py --json files (stills)")
    args = ap.parse_args()

    ids = photoreal.list_identities(args.london)
    pull = {face_id: corner_pull(args.london, face_id) for face_id in ids}
    rank = {face_id: k + 1 for k, face_id in enumerate(sorted(ids, key=pull.get))}
    answers = smile_answers(args.answers)
    judged = sorted(answers, key=pull.get)
    print(f"# {len(ids)} London people's smiles by corner pull (iod): median {np.median(list(pull.values())):.3f}, "
          f"range {min(pull.values()):.3f} to {max(pull.values()):.3f}; {len(judged)} smiling stills judged")

    print("\n| quarter of corner pull (of the judged) | pull | smiles read happy |")
    print("|---|---|---|")
    for q, part in enumerate(np.array_split(judged, 4)):
        if not len(part):  # fewer than four smiles judged
            continue
        right = sum(answers[i]["expression"] == "happy" for i in part)
        print(f"| {q + 1} ({'smallest' if q == 0 else 'largest' if q == 3 else 'middle'}) | "
              f"{pull[part[0]]:.3f}-{pull[part[-1]]:.3f} | {right}/{len(part)} |")

    missed = [i for i in judged if answers[i]["expression"] != "happy"]
    print(f"\nmissed smiles ({len(missed)}), with their rank among the {len(ids)} by corner pull (1 = smallest):")
    for i in missed:
        p = answers[i]["mean_probabilities"] or {}
        print(f"  {i}: pull {pull[i]:.3f}, rank {rank[i]}, read {answers[i]['expression']} (p happy {p.get('happy', 0):.2f})")
    p_happy = np.array([(answers[i]["mean_probabilities"] or {}).get("happy", 0.0) for i in judged])
    ranks_p = np.argsort(np.argsort(p_happy))
    rho = np.corrcoef(np.arange(len(judged)), ranks_p)[0, 1]  # judged is sorted by pull: Spearman's rho
    print(f"\nSpearman's rho between corner pull and p(happy) on the smiling stills: {rho:.2f}")


if __name__ == "__main__":
    main()
