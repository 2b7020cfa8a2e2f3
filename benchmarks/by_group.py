"""Who the misses are: london_eval.py --json answers counted per self-reported ethnicity group.

The London set's london_info.csv gives each person's self-reported ethnicity. Calm faces (wanted
"neutral": calm talkers, neutral photos, the lead of a sequence) and expressions are counted
apart, per group, over every answers file given (the same person's videos from several files
all count). A gap between groups that the overall figure hides is what this is for; with four or
five held-out people a group, read it as a direction, not a measurement.

    python benchmarks/by_group.py --answers talking.json --answers stills.json [--london LONDON_DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.synthesis.london import LONDON_ENV, find_london, london_groups


def count_by_group(videos: list[dict], groups: dict[str, str]) -> dict[str, dict[str, list[int]]]:
    """{group: {"calm": [right, of], "expressions": [right, of], "people": [n]}}."""
    out: dict = defaultdict(lambda: {"calm": [0, 0], "expressions": [0, 0], "people": set()})
    for v in videos:
        row = out[groups.get(v["id"], "?")]
        kind = "calm" if v["want"] == "neutral" else "expressions"
        row[kind][0] += v["expression"] == v["want"]
        row[kind][1] += 1
        row["people"].add(v["id"])
    return {g: {**row, "people": [len(row["people"])]} for g, row in sorted(out.items())}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--answers", action="append", required=True, help="a london_eval.py --json file (repeatable)")
    ap.add_argument("--london", default=None, help=f"the London set (default: ${LONDON_ENV})")
    args = ap.parse_args()
    groups = london_groups(find_london(args.london))
    if not groups:
        sys.exit("the London set has no london_info.csv: no groups to count by")
    videos = [v for path in args.answers for v in json.loads(Path(path).read_text())["videos"]]
    print(f"{len(videos)} videos from {', '.join(args.answers)}")
    print("| self-reported ethnicity | people | calm faces read neutral | expressions read right |")
    print("|---|---|---|---|")
    for g, row in count_by_group(videos, groups).items():
        (cr, cn), (er, en) = row["calm"], row["expressions"]
        print(f"| {g} | {row['people'][0]} | {cr} / {cn} | {er} / {en} |")


if __name__ == "__main__":
    main()
