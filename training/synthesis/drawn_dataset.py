"""Drawn data sets on disk: the CK+ tree of drawn faces (`write_dataset`) and class folders of their
talking videos (`write_talking_dataset`), as `python -m training synth` writes them.

The tree is exactly CK+'s (cohn-kanade-images / Emotion / Landmarks, S%03d subjects with CK+-like
non-contiguous numbers, label files named after the last frame), so the real CK+ loader reads it
unchanged. `plan_subject` decides who a subject is and which sequences it gets without rendering
anything; training.synthesis.drawn renders them.

Determinism: subject i draws everything from ``np.random.default_rng([seed, i])`` and its k-th
sequence from ``default_rng([seed, i, k])``, so a subject's files do not depend on how many subjects
are written, or on the order workers finish in (bytes are identical).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from training.data import ckplus_number
from training.synthesis.drawn import blend, expression, render, render_performance
from training.synthesis.drawn_face import Subject, make_subject
from training.synthesis.facs import CLASSES

CODES = {name: i + 1 for i, name in enumerate(CLASSES)}


@dataclass(frozen=True)
class SequencePlan:
    number: int  # 1, 2, ... within the subject
    emotion: str | None  # None: unlabelled (a non-prototypic mix)
    n_frames: int
    onset: int  # neutral frames at the start
    empty_emotion_dir: bool = False  # unlabelled: an empty Emotion folder rather than none


@dataclass(frozen=True)
class SubjectPlan:
    index: int
    sid: int  # CK+ subject number, S%03d
    color: bool
    subject: Subject
    sequences: tuple[SequencePlan, ...]


def _gap(seed: int, i: int) -> int:
    return int(np.random.default_rng([seed, i]).integers(1, 8))


def subject_ids(seed: int, n: int) -> list[int]:
    """Increasing, non-contiguous CK+-like numbers from 5; subject i's number only depends on
    subjects 0..i (mean gap 4, so ~120 subjects fit in S005..S999, like CK+)."""
    return [4 + v for v in np.cumsum([_gap(seed, i) for i in range(n)]).tolist()]


def _seq_length(rng) -> int:
    return int(rng.integers(4, 8)) if rng.random() < 0.1 else int(rng.integers(8, 25))


def plan_subject(seed: int, index: int, sid: int | None = None) -> SubjectPlan:
    """Who subject `index` is and which sequences it gets (no rendering)."""
    rng = np.random.default_rng([seed, index])
    rng.integers(1, 8)  # the id gap, drawn first (see _gap)
    subject = make_subject(rng)
    color = bool(rng.random() < 0.2)
    kinds: list[str | None] = [str(c) for c in rng.permutation(CLASSES)]
    if rng.random() < 0.25:
        kinds.insert(int(rng.integers(0, len(kinds) + 1)), None)
    seqs = []
    for k, emotion in enumerate(kinds):
        n = _seq_length(rng)
        onset = int(rng.integers(1, min(4, n - 2) + 1))
        seqs.append(SequencePlan(k + 1, emotion, n, onset, bool(emotion is None and rng.random() < 0.5)))
    sid = sid if sid is not None else subject_ids(seed, index + 1)[-1]
    return SubjectPlan(index, sid, color, subject, tuple(seqs))


def _studio(with_studio: bool, backgrounds: tuple, seed: int, index: int, number: int):
    """The studio of a subject's sequence or video (training.synthesis.studio.draw_for), or None: the
    subject's own backdrop."""
    if not with_studio:
        return None
    from training.synthesis import studio

    return studio.draw_for([seed, index, number], backgrounds)


def _write_sequence(out: Path, plan: SubjectPlan, seq: SequencePlan, seed: int, size, studio=None) -> int:
    rng = np.random.default_rng([seed, plan.index, seq.number])
    s = plan.subject
    if seq.emotion is None:
        a, b = rng.choice(CLASSES, 2, replace=False)
        expr = blend(expression(s, str(a), rng), expression(s, str(b), rng), rng)
    else:
        expr = expression(s, seq.emotion, rng)
    frames, marks = render(s, expr, seq.n_frames, rng, size, plan.color, seq.onset, studio)
    subj, num = f"S{plan.sid:03d}", f"{seq.number:03d}"
    img_dir = out / "cohn-kanade-images" / subj / num
    lm_dir = out / "Landmarks" / subj / num
    img_dir.mkdir(parents=True, exist_ok=True)
    lm_dir.mkdir(parents=True, exist_ok=True)
    for i, (frame, pts) in enumerate(zip(frames, marks), start=1):
        stem = f"{subj}_{num}_{i:08d}"
        cv2.imwrite(str(img_dir / f"{stem}.png"), frame)
        (lm_dir / f"{stem}_landmarks.txt").write_text(
            "".join(f"{ckplus_number(x)}{ckplus_number(y)}\n" for x, y in pts.astype(np.float64))
        )
    emo_dir = out / "Emotion" / subj / num
    if seq.emotion is not None:
        emo_dir.mkdir(parents=True, exist_ok=True)
        (emo_dir / f"{subj}_{num}_{seq.n_frames:08d}_emotion.txt").write_text(
            f"{ckplus_number(float(CODES[seq.emotion]))}\n"
        )
    elif seq.empty_emotion_dir:
        emo_dir.mkdir(parents=True, exist_ok=True)
    return seq.n_frames


def _write_subject(args) -> tuple[int, dict]:
    out, seed, index, sid, size, threads, with_studio, backgrounds = args
    if threads is not None:
        cv2.setNumThreads(threads)
    plan = plan_subject(seed, index, sid)
    frames = sum(
        _write_sequence(Path(out), plan, seq, seed, size, _studio(with_studio, backgrounds, seed, index, seq.number))
        for seq in plan.sequences
    )
    labels = [seq.emotion for seq in plan.sequences]
    return index, {"sid": sid, "frames": frames, "labels": labels, "color": plan.color}


def write_dataset(
    out_dir,
    subjects: int = 40,
    seed: int = 0,
    size=(640, 490),
    progress: bool = True,
    workers: int | None = None,
    studio: bool = False,
    backgrounds=(),
) -> dict:
    """Write `subjects` synthetic subjects in the CK+ tree under out_dir; returns a summary.

    Subjects are rendered in parallel (`workers` processes, default: all cores); the files
    are the same whatever the number of workers. `studio`: each sequence before a backdrop and
    through a camera of its own (training.synthesis.studio.draw, `backgrounds` among the backdrops)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    size = (int(size[0]), int(size[1]))
    ids = subject_ids(seed, subjects)
    workers = workers or min(os.cpu_count() or 1, subjects)
    jobs = [
        (str(out), seed, i, ids[i], size, 1 if workers > 1 else None, studio, tuple(backgrounds))
        for i in range(subjects)
    ]
    results = {}

    def done(i, r):
        results[i] = r
        if progress:
            print(
                f"synth: S{r['sid']:03d} {len(r['labels'])} sequences, {r['frames']} frames ({len(results)}/{subjects})",
                file=sys.stderr,
            )

    if workers > 1:
        # spawn, not fork: a fork after OpenCV/torch threads have run can hang the child
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            for i, r in pool.map(_write_subject, jobs):
                done(i, r)
    else:
        for job in jobs:
            done(*_write_subject(job))
    per_class = dict.fromkeys(CLASSES, 0)
    for r in results.values():
        for lab in r["labels"]:
            if lab is not None:
                per_class[lab] += 1
    labels = [lab for r in results.values() for lab in r["labels"]]
    return {
        "subjects": subjects,
        "sequences": len(labels),
        "labelled": sum(lab is not None for lab in labels),
        "unlabelled": sum(lab is None for lab in labels),
        "frames": sum(r["frames"] for r in results.values()),
        "color_subjects": sum(r["color"] for r in results.values()),
        "per_class": per_class,
        "seed": seed,
        "size": list(size),
        "studio": bool(studio),
    }


def _write_talking_subject(args) -> tuple[int, list[str]]:
    out, seed, index, sid, calm, seconds, threads, with_studio, backgrounds = args
    if threads is not None:
        cv2.setNumThreads(threads)
    from training.synthesis import motion
    from training.video import write_video

    plan = plan_subject(seed, index, sid)
    written = []
    for k, emotion in enumerate(motion.talking_kinds(CLASSES, calm), start=1):
        rng = np.random.default_rng([seed, index, 1000 + k])
        perf = motion.talking_performance(emotion, rng, seconds)
        frames, _ = render_performance(
            plan.subject,
            emotion,
            perf,
            rng,
            size=(640, 360),
            color=plan.color,
            studio=_studio(with_studio, backgrounds, seed, index, 1000 + k),
        )
        write_video(Path(out) / emotion / f"S{sid:03d}_talk{k:02d}.mp4", frames, fps=motion.TALK_FPS)
        written.append(emotion)
    return index, written


def write_talking_dataset(
    out_dir,
    subjects: int = 40,
    seed: int = 0,
    calm: int = 2,
    seconds=(2.0, 3.0),
    progress: bool = True,
    workers: int | None = None,
    studio: bool = False,
    backgrounds=(),
) -> dict:
    """Class folders of talking drawn faces under out_dir (`<class>/S<id>_talkNN.mp4`, H.264, 640x360,
    30 fps): per subject `calm` videos of calm talking (neutral) and one of talking while holding each
    of the 7 expressions (training.synthesis.motion). The subjects are write_dataset's (same ids,
    same faces); the files are the same whatever the number of workers. `studio`, `backgrounds`: as write_dataset."""
    ids = subject_ids(seed, subjects)
    workers = workers or min(os.cpu_count() or 1, subjects)
    jobs = [
        (
            str(out_dir),
            seed,
            i,
            ids[i],
            int(calm),
            tuple(seconds),
            1 if workers > 1 else None,
            studio,
            tuple(backgrounds),
        )
        for i in range(subjects)
    ]
    labels: dict[int, list[str]] = {}
    if workers > 1:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            results = pool.map(_write_talking_subject, jobs)
            for i, written in results:
                labels[i] = written
                if progress:
                    print(f"talking: S{ids[i]:03d} ({len(labels)}/{subjects})", file=sys.stderr)
    else:
        for job in jobs:
            i, labels[job[2]] = _write_talking_subject(job)
    every = [lab for written in labels.values() for lab in written]
    return {
        "subjects": subjects,
        "videos": len(every),
        "per_class": {c: every.count(c) for c in ("neutral", *CLASSES)},
        "seed": seed,
        "calm": int(calm),
        "studio": bool(studio),
    }
