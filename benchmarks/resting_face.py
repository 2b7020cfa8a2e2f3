"""A person's own resting face as the reference: does subtracting it help calm faces, and what does it cost
held expressions? Re-decided on saved clips, nothing re-run through the network.

OpenFace normalises a person's action-unit features by their median over the video (Baltrusaitis
et al., 2015). Here the same idea is applied where the served network can take it without
retraining: to each clip's log-probabilities z (8 classes). A reference r (log-probabilities of
the person at rest) is compared with the average person's reference r_bar (the other held-out
people's neutral photos, leave-one-person-out), and what is particular to this person's rest is
taken off every clip:

    z' = z - alpha * (r - r_bar),  then softmax and the service's decision rule (training.clips.decide_video)

The references compared:
  * "video median": the median of the video's own clips (OpenFace's choice; no extra input);
  * "first second": the mean of the clips that end within the video's first second (a camera
    that starts on a face at rest; no extra input, but a video that starts mid-expression loses it);
  * "neutral photo": the person's neutral still (a calibration shot of the person at rest, which
    the service's inputs do not carry today). Flattering here: the rendered videos are made from
    that same photo.

    python benchmarks/resting_face.py --answers talking.json --answers sequences.json --stills stills.json

(london_eval.py --talking / --sequences / --fold 0 with --json; the decision rule's settings as served.)
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from service.settings import Settings
from training.clips import CLIP_LENGTH, CLIP_STRIDE, decide_video

FPS = 30.0  # london_eval.py renders at 30 fps
REFERENCES = ("none", "video median", "first second", "neutral photo")


def log_probs(v: dict) -> np.ndarray:
    return np.log(np.clip(np.asarray(v["clip_probabilities"], dtype=np.float64), 1e-6, 1.0))


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def reference(kind: str, z: np.ndarray, photo: np.ndarray | None) -> np.ndarray | None:
    if kind == "video median":
        return np.median(z, axis=0)
    if kind == "first second":
        ends = (np.arange(len(z)) * CLIP_STRIDE + CLIP_LENGTH) / FPS
        return z[ends <= 1.0 + 1e-9].mean(axis=0) if (ends <= 1.0 + 1e-9).any() else z[:1].mean(axis=0)
    if kind == "neutral photo":
        return photo
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--answers", action="append", required=True, type=Path, help="london_eval.py --json file of videos")
    ap.add_argument(
        "--stills", required=True, type=Path, help="london_eval.py --fold K --json file (the neutral photos)"
    )
    ap.add_argument("--alpha", type=float, nargs="+", default=[0.5, 1.0])
    args = ap.parse_args()
    s = Settings()
    if s.neutral_bias is None:  # the served checkpoint's own prior, as the service would use it
        from service.pipeline import LEGACY_NEUTRAL_BIAS
        from training.checkpoint import read_config

        s.neutral_bias = (read_config(s.model_dir).get("decision") or {}).get("neutral_bias", LEGACY_NEUTRAL_BIAS)
    stills = json.loads(args.stills.read_text())
    classes = stills["classes"]
    neutral = classes.index("neutral")
    photos = {
        v["id"]: log_probs(v).mean(axis=0)
        for v in stills["videos"]
        if v["want"] == "neutral" and v["clip_probabilities"]
    }
    videos = [
        (path.name, v)
        for path in args.answers
        for v in json.loads(path.read_text())["videos"]
        if v["clip_probabilities"]
    ]
    videos += [(args.stills.name, v) for v in stills["videos"] if v["clip_probabilities"]]

    def decide(z: np.ndarray) -> str:
        winner, _, _ = decide_video(
            softmax(z),
            len(classes),
            abstain=neutral,
            radius=s.vote_smooth_clips,
            min_run=s.vote_min_clips,
            abstain_bias=s.neutral_bias,
        )
        return classes[winner]

    print(
        f"# resting-face references on saved clips: {', '.join(sorted({n for n, _ in videos}))}; model {stills['sha256']}; "
        f"decision as served (radius {s.vote_smooth_clips}, min run {s.vote_min_clips}, neutral bias {s.neutral_bias})\n"
    )
    print(
        "| reference | alpha | " + " | ".join(f"{n}: calm / expressions" for n in sorted({n for n, _ in videos})) + " |"
    )
    print("|---|---|" + "---|" * len({n for n, _ in videos}))
    for kind in REFERENCES:
        for alpha in [0.0] if kind == "none" else args.alpha:
            right: dict[str, list[int]] = defaultdict(
                lambda: [0, 0, 0, 0]
            )  # calm right, calm, expressions right, expressions
            for name, v in videos:
                z = log_probs(v)
                others = [p for pid, p in photos.items() if pid != v["id"]]
                r = reference(kind, z, photos.get(v["id"]))
                if r is not None:
                    z = z - alpha * (r - np.mean(others, axis=0))
                calm = v["want"] == "neutral"
                row = right[name]
                row[0 if calm else 2] += decide(z) == v["want"]
                row[1 if calm else 3] += 1
            cells = [f"{r[0]}/{r[1]} / {r[2]}/{r[3]}" for _, r in sorted(right.items())]
            print(f"| {kind} | {alpha:g} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
