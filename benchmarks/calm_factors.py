"""What in a calm talking video makes the model read an expression: head motion, speech, or the face.

For each held-out London person (fold 0 by default), the calm talking performance of
`london_eval.py --talking` (the same speech, head motion and blinks; a camera, light and noise of its
own, the same for all four) is rendered four ways: as it is, without head motion
(no turns, nods, drift or zoom), without speech (the mouth at rest), and as a still (neither, nor
blinks or gaze). Each goes through the full pipeline (`analyse_video`, the service's decision);
printed per person and on average: the answer and the face clips' mean p(neutral). A cause
that costs p(neutral) shows as the gap between "as it is" and the variant without it; what is
left in the still is the face itself.

    python benchmarks/calm_factors.py [--model training/models/default] [--fold 0] [--people N] [--json out.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from london_eval import TALK_FPS, TALK_FRAMES, TALK_SEED, mean_probabilities

from service.pipeline import Predictor, analyse_video
from service.settings import DEFAULT_MODEL_DIR, Settings
from training.synthesis import motion, photoreal
from training.synthesis.facs import KINDS
from training.synthesis.london import HOLDOUT_EVERY, LONDON_ENV, find_london, list_identities, split_identities

VARIANTS = ("as it is", "no head motion", "no speech", "still")


def variants(perf: motion.Performance) -> dict[str, motion.Performance]:
    n = len(perf)
    zero, rest = np.zeros(n), {"shift": np.zeros((n, 2)), "scale": np.ones(n)}
    no_head = dict(yaw=zero, pitch=zero, roll=zero, **rest)
    no_speech = {"jaw": zero, "spread": zero, "press": zero}
    return {
        "as it is": perf,
        "no head motion": dataclasses.replace(perf, **no_head),
        "no speech": dataclasses.replace(perf, **no_speech),
        "still": dataclasses.replace(perf, **no_head, **no_speech, blink=zero, gaze=np.zeros((n, 2))),
    }


def main():
    from videos import write_video

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--london", default=None, help=f"the London set (default: ${LONDON_ENV})")
    ap.add_argument("--model", default=str(DEFAULT_MODEL_DIR))
    ap.add_argument("--fold", type=int, default=0, choices=range(HOLDOUT_EVERY))
    ap.add_argument("--people", type=int, default=None, help="only the first N held-out people")
    ap.add_argument("--json", default=None, metavar="FILE")
    args = ap.parse_args()
    london = str(find_london(args.london))
    _, held = split_identities(list_identities(london), args.fold)
    settings = Settings(model_dir=Path(args.model))
    predictor = Predictor.from_settings(settings)
    k = KINDS.index("neutral")
    rows = {}
    tmp = Path(tempfile.mkdtemp(prefix="ramfer-calm-"))
    try:
        for face_id in held[: args.people]:
            rng = np.random.default_rng([TALK_SEED, int(face_id), k])
            perf = motion.performance(TALK_FRAMES, TALK_FPS, rng, talking=True, expression=None)
            row = {}
            for name, p in variants(perf).items():
                scene = np.random.default_rng([TALK_SEED, int(face_id), k, 1])  # the same camera for every variant
                frames = photoreal.render_performance(london, face_id, "neutral", p, scene)
                video = write_video(tmp / f"{face_id}.mp4", frames, fps=TALK_FPS)
                result = analyse_video(video, predictor, settings)
                mean = mean_probabilities(result, predictor.classes)
                row[name] = {
                    "answer": result["expression"],
                    "p_neutral": round(mean["neutral"], 3),
                    "top_expression": max((c for c in mean if c != "neutral"), key=mean.get),
                }
            rows[face_id] = row
            print(face_id, " | ".join(f"{n}: {r['answer']} {r['p_neutral']:.2f}" for n, r in row.items()), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n# fold {args.fold} held-out calm talkers: {len(rows)}; model {predictor.variant} {predictor.sha256[:12]}")
    print("| calm talking, rendered | answered neutral | mean p(neutral) | people under p 0.5 |")
    print("|---|---|---|---|")
    for name in VARIANTS:
        ps = [r[name]["p_neutral"] for r in rows.values()]
        right = sum(r[name]["answer"] == "neutral" for r in rows.values())
        print(f"| {name} | {right} / {len(rows)} | {np.mean(ps):.2f} | {sum(p < 0.5 for p in ps)} |")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"model": args.model, "sha256": predictor.sha256, "fold": args.fold, "people": rows}, indent=1)
        )


if __name__ == "__main__":
    main()
