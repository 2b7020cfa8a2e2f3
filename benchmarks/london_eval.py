"""Real faces the model never trained on: the London set's held-out identities.

Stills (the default; the bar for real faces is 95 % of them right): for every held-out identity
(training.synthesis.london.split_identities: every 5th id), its real neutral photo and its real smiling
photo are each turned into a short constant video (16 frames, 30 fps, H.264, the photo as is)
and sent through the full pipeline (`analyse_video`). The neutral one should come out
"neutral", the smiling one "happy".

Sequences (--sequences): for every held-out identity, one photo-real video of each class made
the way the training data is made (training/synthesis/photoreal.py, with a seed the training set never
used): 1 s of the still neutral face, 1 s rising to the peak, then the peak held for 1 s,
90 frames at 30 fps.
Happy is the person's real smile; the other six are warps of their neutral photo. The timeline
of the happy videos is checked too: neutral first, happy at the end ("a person going from
neutral to a broad smile").

Prints right per class, what each wrong one became, and, with --baseline, the same for the
per-frame FER2013 CNN (benchmarks/fer2013_baseline.py) on the same videos' decoded frames.

--fold K judges on London fold K's people instead (fold 0 is the served checkpoint's held-out
set); the model must have been trained without them (`training train --london-fold K`,
benchmarks/london_folds.py). --flip-average scores every clip with its mirror image too.

    python benchmarks/london_eval.py [--london LONDON_DIR] [--model training/models/default]
                                     [--sequences | --talking [--strength LO HI] [--calm-draws K] [--calm-only]]
                                     [--all | --fold K] [--flip-average] [--baseline emotion_model.hdf5]
                                     [--json answers.json]

--json writes every video's answer, its face clips' mean (calibrated) probabilities and every face clip's
probabilities as the network gave them (before the checkpoint's temperature), so that two checkpoints can be compared video by video (which people each gets
right), and benchmarks/decision_rules.py can re-decide the same clips under other rules (smoothing,
minimum run, neutral bias) without running the network again.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import itertools

from service.pipeline import Predictor, analyse_video
from service.settings import DEFAULT_MODEL_DIR, Settings
from training.synthesis import photoreal
from training.synthesis.facs import KINDS
from training.synthesis.london import HOLDOUT_EVERY, LONDON_ENV, find_london, list_identities, split_identities
from training.video import VideoError, read_frames

SEQUENCE_SEED = 1000  # the training set is written with seed 0: these are other sequences
LEAD_FRAMES, RISE_FRAMES, HOLD_FRAMES = 30, 30, 30


def still_videos(london: str, ids: list[str], out: Path, frames: int):
    """(identity, wanted label, video path): each person's real neutral and smiling photo, held still."""
    from videos import write_video

    for face_id in ids:
        for want, photo in (("neutral", f"neutral/{face_id}_03.jpg"), ("happy", f"smiling/{face_id}_08.jpg")):
            image = cv2.imread(str(Path(london) / photo))
            yield face_id, want, write_video(out / f"{face_id}_{want}.mp4", [image] * frames)


def sequence_videos(london: str, ids: list[str], out: Path):
    """(identity, wanted label, video path): one photo-real lead-rise-hold video per class."""
    from videos import write_video

    for face_id in ids:
        for k, emotion in enumerate(KINDS):
            rng = np.random.default_rng([SEQUENCE_SEED, int(face_id), k])
            frames = photoreal.render_identity_sequence(london, face_id, emotion, RISE_FRAMES, rng)
            frames = [frames[0]] * LEAD_FRAMES + frames + [frames[-1]] * HOLD_FRAMES
            yield face_id, emotion, write_video(out / f"{face_id}_{emotion}.mp4", frames)


TALK_SEED = 2000  # talking videos: neither the training set's seed nor --sequences'
TALK_FPS, TALK_FRAMES = 30, 72  # 2.4 s: 33 clips


def talking_videos(
    london: str,
    ids: list[str],
    out: Path,
    strength: tuple[float, float] = (0.6, 1.0),
    calm_draws: int = 1,
    calm_only: bool = False,
):
    """(identity, wanted label, video path): each person talking calmly (neutral), and talking while
    holding each expression (motion.envelope "held", strength drawn from `strength`), 640x360 at 30 fps,
    with head turns up to 20 degrees, nods, blinks (training.synthesis.motion). `calm_draws` > 1 adds
    more calm videos per person (other speech, head motion and camera; the first is the same video
    whatever the number), because one calm video a person makes a noisy figure of 21."""
    from videos import write_video

    from training.synthesis import motion

    for face_id in ids:
        for k, emotion in enumerate(KINDS):
            calm = emotion == "neutral"
            if calm_only and not calm:
                continue
            for draw in range(calm_draws if calm else 1):
                rng = np.random.default_rng([TALK_SEED, int(face_id), k] + ([draw] if draw else []))
                perf = motion.performance(
                    TALK_FRAMES,
                    TALK_FPS,
                    rng,
                    talking=True,
                    expression=None if calm else "held",
                    strength=None if calm else float(rng.uniform(*strength)),
                )
                frames = photoreal.render_performance(london, face_id, emotion, perf, rng)
                yield face_id, emotion, write_video(out / f"{face_id}_{emotion}_talking.mp4", frames, fps=TALK_FPS)


def flicker(result: dict) -> float:
    """Clip-label changes per second of face clips (the timeline's restlessness)."""
    labels = [c["label"] for c in result["clips"] if c["face"]]
    seconds = result["video"]["duration_s"] if result.get("video") else 0
    return sum(a != b for a, b in itertools.pairwise(labels)) / seconds if seconds else 0.0


def mean_probabilities(result: dict, classes: list[str]) -> dict[str, float] | None:
    """The face clips' probabilities averaged (None where no clip had a face): how far each answer
    was from another, which the label alone does not say."""
    face = [c for c in result["clips"] if c["face"]]
    if not face:
        return None
    return {k: round(float(np.mean([c["probabilities"][k] for c in face])), 4) for k in classes}


def network_probabilities(result: dict, classes: list[str], temperature: float) -> list[list[float]]:
    """The face clips' probabilities as the network gave them: a result reports them calibrated (at the
    checkpoint's temperature); this undoes it, so that decision_rules.py re-decides, and calibrate.py
    fits, what the service's decision read."""
    from training.calibration import apply_temperature

    face = [[c["probabilities"][k] for k in classes] for c in result["clips"] if c["face"]]
    if not face or temperature == 1.0:
        return face
    return [[round(float(v), 5) for v in row] for row in apply_temperature(face, 1.0 / temperature)]


def smile_timeline(segments: list[dict]) -> tuple[bool, bool]:
    """(neutral at the start and happy at the end, and no third label on the way)."""
    runs = [s["label"] for s in segments if s["label"] is not None]
    ok = len(runs) >= 2 and runs[0] == "neutral" and runs[-1] == "happy"
    return ok, ok and set(runs) == {"neutral", "happy"}


def report(name: str, outcomes: dict[str, Counter]) -> None:
    total = sum(sum(c.values()) for c in outcomes.values())
    right = sum(c[want] for want, c in outcomes.items())
    print(f"\n{name}: {right}/{total} = {100 * right / total:.1f} %")
    print("| wanted | right | what the wrong ones became |")
    print("|---|---|---|")
    for want, c in outcomes.items():
        others = ", ".join(f"{label} {k}" for label, k in c.most_common() if label != want) or "-"
        print(f"| {want} | {c[want]}/{sum(c.values())} | {others} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--london", default=None, help=f"the London set (default: ${LONDON_ENV})")
    ap.add_argument("--model", default=str(DEFAULT_MODEL_DIR))
    ap.add_argument("--frames", type=int, default=16, help="length of the still videos")
    ap.add_argument(
        "--sequences", action="store_true", help="photo-real lead-rise-hold videos of every class instead of stills"
    )
    ap.add_argument(
        "--talking",
        action="store_true",
        help="photo-real talking videos instead of stills: calm (neutral) and holding each expression",
    )
    ap.add_argument(
        "--strength",
        type=float,
        nargs=2,
        default=(0.6, 1.0),
        metavar=("LO", "HI"),
        help="with --talking: the held expressions' strength is drawn from [LO, HI] (subtler: 0.3 0.6)",
    )
    ap.add_argument(
        "--calm-draws",
        type=int,
        default=1,
        metavar="K",
        help="with --talking: K calm talking videos per person (the first is the one of K=1)",
    )
    ap.add_argument("--calm-only", action="store_true", help="with --talking: only the calm talking videos")
    ap.add_argument(
        "--all", action="store_true", help="every identity, not only the held-out ones (training ones included!)"
    )
    ap.add_argument(
        "--fold",
        type=int,
        default=0,
        choices=range(HOLDOUT_EVERY),
        help="judge on London fold K's people (0: the served checkpoint's held-out people; a checkpoint "
        "trained with `training train --london-fold K` for the others, see benchmarks/london_folds.py)",
    )
    ap.add_argument("--baseline", default=None, help="fer's emotion_model.hdf5: also score the per-frame FER2013 CNN")
    ap.add_argument("--people", type=int, default=None, help="only the first N identities (a quick look)")
    ap.add_argument(
        "--flip-average", action="store_true", help="average each clip with its mirror image (Settings.flip_average)"
    )
    ap.add_argument(
        "--json", default=None, metavar="FILE", help="write every video's answer and mean clip probabilities here"
    )
    args = ap.parse_args()
    args.london = str(find_london(args.london))

    ids = list_identities(args.london)
    _, held = split_identities(ids, args.fold)
    chosen = (ids if args.all else held)[: args.people]
    settings = Settings(model_dir=Path(args.model), flip_average=args.flip_average)
    predictor = Predictor.from_settings(settings)
    if "neutral" not in predictor.classes:
        sys.exit(f"{args.model} has no neutral class: it cannot say 'nothing'")
    baseline = None
    if args.baseline:
        from fer2013_baseline import Fer2013Baseline

        baseline = Fer2013Baseline(args.baseline)

    tmp = Path(tempfile.mkdtemp(prefix="ramfer-london-"))
    if args.talking:
        videos = talking_videos(args.london, chosen, tmp, tuple(args.strength), args.calm_draws, args.calm_only)
    elif args.sequences:
        videos = sequence_videos(args.london, chosen, tmp)
    else:
        videos = still_videos(args.london, chosen, tmp, args.frames)
    flickers = defaultdict(list)
    ours = defaultdict(Counter)
    theirs = {reading: defaultdict(Counter) for reading in (baseline.READINGS if baseline else ())}
    wrong, smiles, records = [], Counter(), []
    try:
        for face_id, want, video in videos:
            try:
                result = analyse_video(video, predictor, settings)
            except VideoError as e:  # no face found: a wrong answer, not the end of the evaluation
                result = {"expression": f"({e.code})", "clips": [], "segments": []}
            ours[want][result["expression"]] += 1
            if result["expression"] != want:
                wrong.append(f"{face_id} {want} -> {result['expression']}")
            face_clips = [c for c in result["clips"] if c["face"]]
            records.append(
                {
                    "id": face_id,
                    "want": want,
                    "expression": result["expression"],
                    "mean_probabilities": mean_probabilities(result, predictor.classes),
                    "duration_s": result.get("video", {}).get("duration_s"),
                    "timings_ms": result.get("timings_ms"),
                    "clip_probabilities": network_probabilities(result, predictor.classes, predictor.temperature),
                }
            )
            flickers[want].append(flicker(result) if face_clips else 0.0)
            if args.sequences and want == "happy":
                starts_neutral_ends_happy, only_those = smile_timeline(result["segments"])
                smiles["ok"] += starts_neutral_ends_happy
                smiles["clean"] += only_those
                smiles["videos"] += 1
            if baseline:
                for reading, label in baseline.video_labels(f.gray for f in read_frames(video)).items():
                    theirs[reading][want][label or "(no face)"] += 1
            video.unlink()
    finally:  # the videos are deleted one by one; this is for a run cut short
        shutil.rmtree(tmp, ignore_errors=True)

    kind = (
        "talking photo-real videos"
        if args.talking
        else "lead-rise-hold photo-real videos"
        if args.sequences
        else "stills (neutral, smiling photo)"
    )
    print(
        f"# {'all' if args.all else f'fold {args.fold} held-out'} London identities: {len(chosen)} people, {kind}; "
        f"model {predictor.variant} {predictor.sha256[:12]}{', flip-averaged' if args.flip_average else ''}"
    )
    report("served model", ours)
    if wrong:
        print("wrong: " + "; ".join(wrong))
    if args.sequences:
        print(
            f"\nhappy videos whose timeline starts neutral and ends happy: {smiles['ok']}/{smiles['videos']} "
            f"(with no other label on the way: {smiles['clean']}/{smiles['videos']})"
        )
    if args.talking:
        calm = flickers["neutral"]
        every = [f for fs in flickers.values() for f in fs]
        print(
            f"\nflicker (clip-label changes per second): calm talking {np.mean(calm):.2f} (max {np.max(calm):.2f}), "
            f"all talking videos {np.mean(every):.2f}"
        )
    for reading, outcomes in theirs.items():
        report(f"per-frame FER2013 CNN, {reading} (no contempt class)", outcomes)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "model": args.model,
                    "sha256": predictor.sha256,
                    "fold": None if args.all else args.fold,
                    "kind": "talking" if args.talking else "sequences" if args.sequences else "stills",
                    "flip_average": args.flip_average,
                    "detect_every": settings.detect_every,
                    "classes": predictor.classes,
                    "videos": records,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
