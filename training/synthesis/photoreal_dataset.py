"""Photo-real data sets on disk: the CK+ tree of London faces (`write_dataset`) and class folders of
their talking videos (`write_talking_dataset`), as `python -m training synth --photoreal` writes them.

Subject folders are "L" + face id (a morph: "L001m017"); every person gets one sequence per class and
a neutral one in a seeded order, and, on request, more real smiles and faint ones (`_plan`); the
peak stills `--neutral` training may use are the real smiles only (PEAK_STILLS). People are rendered
one at a time, in worker processes when asked, with the same bytes either way.

Determinism: identity i draws from ``np.random.default_rng([seed, int(face_id)])`` and its k-th
sequence from ``default_rng([seed, int(face_id), k])`` (a morph's id: `id_key`); a sequence's bytes do not depend on
which other identities are written or in what order.
"""

from __future__ import annotations

import json
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from training.data import PEAK_STILLS_FILE, ckplus_number
from training.synthesis import motion
from training.synthesis.facs import CLASSES, KINDS
from training.synthesis.identity import load_identity
from training.synthesis.london import ATTRIBUTION, face_files, find_london, id_key, list_identities, london_people
from training.synthesis.photoreal import render_identity_sequence, render_performance
from training.synthesis.smile import faint_smile_peak

CODES = {"neutral": 0} | {name: i + 1 for i, name in enumerate(CLASSES)}


# Which peak frames `--neutral` training may use as stills of their expression (training.data):
# only the real smiles. One frame of a neutral photo warped towards anger, fear, sadness or
# contempt looks like some real people's resting face: a model trained with those stills called
# 7 of 21 held-out real neutral photos an expression (docs/real-faces.md).
PEAK_STILLS = {"classes": ["happy"]}


def _seq_length(rng) -> int:
    return int(rng.integers(12, 19))


FAINT = "faint happy"  # a plan's name for a faint smile: labelled happy


def _plan(seed: int, face_id: str, neutral: bool, smiles: int = 1, faint: int = 0) -> tuple[bool, list[str]]:
    rng = np.random.default_rng([seed, id_key(face_id)])
    color = bool(rng.random() < 0.2)
    kinds = [str(k) for k in rng.permutation(KINDS)]
    if not neutral:
        kinds.remove("neutral")
    # Extra smiles, then faint ones, go last, so a tree written with more of them holds the one
    # with fewer as is.
    return color, kinds + ["happy"] * (smiles - 1) + [FAINT] * faint


def _studio(with_studio: bool, backgrounds: tuple, seed: int, face_id: str, k: int):
    """The studio of a person's k-th sequence or video (training.synthesis.studio.draw_for), or None
    for the London studio as photographed."""
    if not with_studio:
        return None
    from training.synthesis import studio

    return studio.draw_for([seed, id_key(face_id), k], backgrounds)


def _write_identity(args) -> dict:
    london_dir, out, seed, face_id, size, neutral, smiles, faint, threads, with_studio, backgrounds = args
    if threads is not None:
        cv2.setNumThreads(threads)
    out = Path(out)
    color, kinds = _plan(seed, face_id, neutral, smiles, faint)
    subj = f"L{face_id}"
    frames, labels, peaks = 0, [], []
    for k, kind in enumerate(kinds, start=1):
        rng = np.random.default_rng([seed, id_key(face_id), k])
        n = _seq_length(rng)
        emotion, peak = kind, 1.0
        if kind == FAINT:
            emotion, peak = "happy", faint_smile_peak(london_dir, face_id, rng)
            peaks.append(round(peak, 3))
        labels.append(emotion)
        seq = render_identity_sequence(
            london_dir,
            face_id,
            emotion,
            n,
            rng,
            size=size,
            color=color,
            peak=peak,
            studio=_studio(with_studio, backgrounds, seed, face_id, k),
        )
        num = f"{k:03d}"
        img_dir = out / "cohn-kanade-images" / subj / num
        img_dir.mkdir(parents=True, exist_ok=True)
        for i, frame in enumerate(seq, start=1):
            cv2.imwrite(str(img_dir / f"{subj}_{num}_{i:08d}.png"), frame)
        emo_dir = out / "Emotion" / subj / num
        emo_dir.mkdir(parents=True, exist_ok=True)
        (emo_dir / f"{subj}_{num}_{len(seq):08d}_emotion.txt").write_text(f"{ckplus_number(float(CODES[emotion]))}\n")
        frames += len(seq)
    load_identity.cache_clear()  # one identity at a time: keep the worker's memory flat
    return {
        "face_id": face_id,
        "subject": subj,
        "frames": frames,
        "labels": labels,
        "color": color,
        "faint_peaks": peaks,
    }


def _per_identity(render, jobs: list, workers: int, progress: bool, describe) -> list[dict]:
    """render(job) for every identity's job, in `workers` processes when > 1 (same bytes either way),
    with a progress line per identity."""
    results, t0 = [], time.monotonic()

    def done(r):
        results.append(r)
        if progress:
            print(f"{describe(r)} ({len(results)}/{len(jobs)}, {time.monotonic() - t0:.0f} s)", file=sys.stderr)

    if workers > 1 and len(jobs) > 1:
        # spawn, not fork: a fork after OpenCV/torch threads have run can hang the child
        with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=multiprocessing.get_context("spawn")) as pool:
            for r in pool.map(render, jobs):
                done(r)
    else:
        for job in jobs:
            done(render(job))
    return results


def write_dataset(
    london_dir,
    out_dir,
    seed=0,
    identities=None,
    size=(640, 490),
    neutral=True,
    smiles: int = 1,
    faint: int = 0,
    progress=True,
    workers: int = 1,
    studio: bool = False,
    backgrounds=(),
) -> dict:
    """Write the CK+ tree of London Set faces under out_dir: for every identity (or the given
    ids) one sequence per class and, with `neutral`, one neutral sequence (label code 0), in a
    seeded random order. With `smiles` = N > 1, each person's real smile is N happy sequences,
    each under its own camera (framing, light, noise): the real smiles are the set's only real
    expressions, and their peak frames its only real expressive stills. With `faint` = F, F more
    happy sequences per person stop the morph of the real smile where it moves the mouth corners
    by a faint smile's pull (faint_smile_peak), so the peak stills include faint smiles of people
    whose own smile is broad. Subject folders are "L" + face id. Returns a summary dict.
    `workers` > 1 renders identities in that many processes (same bytes either way).
    `studio`: each sequence in a studio of its own (training.synthesis.studio.draw: backdrop, light,
    camera), with `backgrounds` (photo paths) among the backdrops."""
    london_dir = str(Path(london_dir).resolve())
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ids = list_identities(london_dir) if identities is None else [str(i) for i in identities]
    real = sorted(set().union(*(london_people(f"L{i}") for i in ids)))  # a morph needs both of its people
    missing = [i for i in real if not all(p.is_file() for p in face_files(london_dir, i))]
    if missing:
        raise FileNotFoundError(f"London Set identities without neutral photo, template and smile: {missing}")
    size = (int(size[0]), int(size[1]))
    if smiles < 1 or faint < 0:
        raise ValueError("smiles must be at least 1 and faint at least 0")
    jobs = [
        (
            london_dir,
            str(out),
            seed,
            i,
            size,
            neutral,
            int(smiles),
            int(faint),
            1 if workers > 1 else None,
            studio,
            tuple(backgrounds),
        )
        for i in ids
    ]
    results = _per_identity(
        _write_identity,
        jobs,
        workers,
        progress,
        lambda r: f"photoreal: {r['subject']} {len(r['labels'])} sequences, {r['frames']} frames",
    )
    (out / PEAK_STILLS_FILE).write_text(json.dumps(PEAK_STILLS) + "\n")
    per_class = {c: 0 for c in KINDS if neutral or c != "neutral"}
    for r in results:
        for lab in r["labels"]:
            per_class[lab] += 1
    return {
        "identities": len(results),
        "subjects": [r["subject"] for r in results],
        "sequences": sum(len(r["labels"]) for r in results),
        "frames": sum(r["frames"] for r in results),
        "color_identities": sum(r["color"] for r in results),
        "per_class": per_class,
        "seed": seed,
        "smiles": int(smiles),
        "faint_smiles": int(faint),
        "faint_peaks": {r["subject"]: r["faint_peaks"] for r in results if r["faint_peaks"]},
        "size": list(size),
        "studio": bool(studio),
        "backgrounds": len(backgrounds) if studio else 0,
        "attribution": ATTRIBUTION,
    }


# --------------------------------------------------------------------------------------------
# Talking videos (class folders of H.264 MP4s, read by training.data's class-folder loader)
# --------------------------------------------------------------------------------------------

TALK_SIZE = (640, 360)  # 16:9, as phones, webcams and calls film


def _write_talking_identity(args) -> dict:
    london_dir, out, seed, face_id, calm, seconds, threads, with_studio, backgrounds = args
    if threads is not None:
        cv2.setNumThreads(threads)
    from training.video import write_video

    kinds = motion.talking_kinds(CLASSES, calm)
    # the subject is the name up to its first underscore
    paths = [Path(out) / emotion / f"L{face_id}_talk{k:02d}.mp4" for k, emotion in enumerate(kinds, start=1)]
    if all(p.exists() for p in paths):  # the same bytes would come out: a run for more people adds to a set
        return {"face_id": face_id, "labels": kinds, "reused": True}
    color, _ = _plan(seed, face_id, True)
    for k, (emotion, path) in enumerate(zip(kinds, paths), start=1):
        rng = np.random.default_rng([seed, id_key(face_id), 1000 + k])
        perf = motion.talking_performance(emotion, rng, seconds)
        st = _studio(with_studio, backgrounds, seed, face_id, 1000 + k)
        frames = render_performance(london_dir, face_id, emotion, perf, rng, size=TALK_SIZE, color=color, studio=st)
        # written under a hidden name (which loaders skip) and renamed when whole, so an interrupted
        # run never leaves a truncated video that a later run would take as done
        partial = write_video(path.with_name("." + path.name), frames, fps=motion.TALK_FPS)
        partial.replace(path)
    load_identity.cache_clear()
    return {"face_id": face_id, "labels": kinds, "reused": False}


def write_talking_dataset(
    london_dir,
    out_dir,
    seed=0,
    identities=None,
    calm: int = 2,
    seconds=(2.0, 3.0),
    progress=True,
    workers: int = 1,
    studio: bool = False,
    backgrounds=(),
) -> dict:
    """Class folders of talking London faces under out_dir (`<class>/L<id>_talkNN.mp4`): per person
    `calm` videos of calm talking (neutral) and one of talking while holding each of the 7
    expressions, `seconds` (2-3 s) long at 30 fps, 640x360, with head turns, nods and blinks (training.synthesis.motion).
    Deterministic per seed and identity, like write_dataset; `studio` and `backgrounds` as there."""
    london_dir = str(Path(london_dir).resolve())
    ids = list_identities(london_dir) if identities is None else [str(i) for i in identities]
    jobs = [
        (
            london_dir,
            str(out_dir),
            seed,
            i,
            int(calm),
            tuple(seconds),
            1 if workers > 1 else None,
            studio,
            tuple(backgrounds),
        )
        for i in ids
    ]
    results = _per_identity(_write_talking_identity, jobs, workers, progress, lambda r: f"talking: L{r['face_id']}")
    per_class = {c: sum(r["labels"].count(c) for r in results) for c in KINDS}
    return {
        "identities": len(results),
        "reused_identities": sum(r["reused"] for r in results),
        "videos": sum(per_class.values()),
        "per_class": per_class,
        "seed": seed,
        "calm": int(calm),
        "fps": motion.TALK_FPS,
        "size": list(TALK_SIZE),
        "studio": bool(studio),
        "attribution": ATTRIBUTION,
    }


if __name__ == "__main__":  # python -m training.synthesis.photoreal_dataset OUT_DIR [N_IDENTITIES]
    import json

    target = sys.argv[1] if len(sys.argv) > 1 else "data/photoreal"
    london = find_london()
    ids = list_identities(london)
    if len(sys.argv) > 2:
        ids = ids[: int(sys.argv[2])]
    print(json.dumps(write_dataset(london, target, identities=ids), indent=1))
