"""Labelled expression videos from disk, as face-crop arrays ready for training.

Two layouts are read:

* **CK+ as distributed** (`load_ckplus`)::

      ROOT/cohn-kanade-images/S005/001/S005_001_00000001.png ...   frames, neutral -> peak
      ROOT/Emotion/S005/001/S005_001_00000011_emotion.txt          one float, the label code
      ROOT/Landmarks/S005/001/S005_001_00000001_landmarks.txt      68 "x y" rows per frame (optional)

  Only sequences with a non-empty Emotion file are used; the code is read as a float
  ("   3.0000000e+00"); the subject is the S### folder. Gray, colour and 16-bit frames are
  all turned gray; hidden files (.DS_Store, ._*) are ignored. Each frame's face box comes from
  its landmarks when there are any, else from the face detector (BlazeFace), else it is the whole frame
  (copies that hold ready-made face crops).

* **One folder per class of video files** (`load_class_folders`)::

      ROOT/happy/alice_take1.mp4   ROOT/happy/bob_02.webm   ROOT/surprise/alice_3.mov ...

  The class is the folder name (one of the model's classes); the **subject is the part of the
  file name before the first underscore** ("alice", "bob"), so all of a person's videos stay in
  one cross-validation fold. Faces are found by the detector, as the service finds them.

* **CREMA-D's file naming** (`load_cremad`): video files named `ActorID_Sentence_EMO_Level.flv`
  (e.g. `1001_DFA_ANG_XX.flv`), EMO in ANG DIS FEA HAP NEU SAD; the subject is the ActorID.

With `classes` that include "neutral" (an optional 8th output for the served model), CK+ trees
also give, for every expression sequence, a neutral still made of its first (onset) frame and a
still of the expression made of its last (peak) frame, and CK+ label code 0 reads as neutral.
A tree may limit the peak stills to some classes with a `peak_stills.json` at its root,
`{"classes": ["happy"]}`: the photo-real set does, because a single frame of a photo warped
towards anger or fear looks like some real people's resting face (docs/real-faces.md). For the
same reason every expression sequence of an 8-class set keeps only its late part (`late_part`):
every clip of it ends past two thirds of the way to the peak, so no clip of a face that has hardly
begun to move is labelled with the expression. The 7-class sets of the paper's protocol keep whole
sequences.

Preprocessing is `training.faces` - the code the service runs - and the results are cached on
disk (keyed by the files' names, sizes and times and by the crop settings), so epochs and
later runs do not decode images again.

* **Still images** (`load_ferplus`, `load_image_folders`): FER+ as its generator writes it
  (`FER2013Train/label.csv` beside the PNGs: each row the file, its face box and ten annotators'
  votes), and class folders of photos (`ROOT/happy/0001.jpg`, the layout RAF-DB and AffectNet
  copies are usually kept in). A still is a one-frame video, so it becomes a static clip
  (clip_indices repeats its frame), cropped by the same detector and alignment as a served frame.

* **A pack** (`save_pack`, `load_pack`; `python -m training pack`): one .npz of a loaded data set's
  face crops, labels, subjects and the crop settings that made them. Preprocess once where the
  trees are, train where they are not (a GPU machine); `--data FILE.npz` reads it like a tree.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from training.bundled import default_cache_dir
from training.clips import CLIP_LENGTH
from training.faces import (
    FACE_DIM,
    CropConfig,
    FaceDetector,
    crop_frame,
    fill_missing,
    full_frame_face,
    landmarks_face,
    smooth_boxes,
    to_gray,
)
from training.video import VideoError, read_frames

log = logging.getLogger(__name__)

CLASSES = ("anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise")  # CK+ codes 1..7
NEUTRAL = "neutral"
CLASSES_WITH_NEUTRAL = (*CLASSES, NEUTRAL)
CREMAD_EMOTIONS = {"ANG": "anger", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": NEUTRAL, "SAD": "sadness"}
CREMAD_NAME = re.compile(r"^(\d{4})_[A-Z0-9]{3}_(ANG|DIS|FEA|HAP|NEU|SAD)_[A-Z]{2}$")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
VIDEO_SUFFIXES = {".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm", ".flv", ".ts", ".3gp"}


def ckplus_number(v: float) -> str:
    """A number as CK+'s label and landmark files write it ("   3.0000000e+00"): the synthetic
    sets are written in the layout this module reads."""
    return f"   {v:.7e}"


CACHE_VERSION = 2  # 2: BlazeFace faces and landmarks. Bump when preprocessing changes, so stale caches are not reused


@dataclass
class Video:
    subject: str
    name: str  # "S005/001", or the file's path under the class-folder root
    label: int  # index into the data set's classes
    frames: np.ndarray  # (T, S, S) uint8 face crops
    # (K,) share of each class among the annotators' votes (FER+), the training target where there
    # is one; None: the label alone (one-hot)
    target: np.ndarray | None = None
    source: int = 0  # which of the run's --data roots it came from (their shares of an epoch: TrainConfig.shares)


@dataclass
class Dataset:
    videos: list[Video]
    classes: tuple[str, ...]
    layout: str  # "ckplus" or "folders"
    root: str

    @property
    def subjects(self) -> list[str]:
        return [v.subject for v in self.videos]

    @property
    def labels(self) -> np.ndarray:
        return np.array([v.label for v in self.videos], dtype=np.int64)

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(self.classes))
        return {c: int(n) for c, n in zip(self.classes, counts)}


def visible(path: Path) -> bool:
    return not path.name.startswith(".")


def natural_key(path: Path):
    """Sort "frame_2" before "frame_10" even where a copy's numbers are not zero-padded."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def read_label_code(emotion_dir: Path) -> int | None:
    """The label code of a CK+ sequence, or None when it has no (or an empty) Emotion file."""
    if not emotion_dir.is_dir():
        return None
    for f in sorted(filter(visible, emotion_dir.glob("*_emotion.txt"))):
        text = f.read_text(errors="replace").split()
        if text:
            return int(round(float(text[0])))
    return None


def read_landmarks(path: Path) -> np.ndarray | None:
    try:
        pts = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except (OSError, ValueError):
        return None
    return pts if pts.shape == (68, 2) and np.isfinite(pts).all() else None


def crop_sequence(grays: list[np.ndarray], faces: np.ndarray, crop: CropConfig) -> np.ndarray:
    """(T, S, S) crops of a training sequence from its (T, FACE_DIM) faces: smoothed as the
    service smooths them, gaps filled from the nearest frame, the whole frame where no face was
    found at all; aligned on the eyes when crop.align, as the service crops."""
    faces = fill_missing(smooth_boxes(faces, crop.smooth_radius))
    out = np.empty((len(grays), crop.size, crop.size), dtype=np.uint8)
    for t, gray in enumerate(grays):
        face = full_frame_face(gray.shape, crop) if np.isnan(faces[t, 0]) else faces[t]
        out[t] = crop_frame(gray, face, crop)
    return out


# --- CK+ ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CKSequence:
    subject: str
    name: str
    code: int
    frames: tuple[Path, ...]
    landmarks: tuple[Path | None, ...]


def find_ckplus(root: Path) -> list[CKSequence]:
    """The labelled sequences of a CK+ tree (unlabelled ones are skipped)."""
    images = root / "cohn-kanade-images"
    if not images.is_dir():
        raise FileNotFoundError(f"{root} is not a CK+ tree: it has no cohn-kanade-images/ folder")
    found = []
    for subject_dir in sorted(filter(visible, images.iterdir())):
        if not subject_dir.is_dir():
            continue
        for seq_dir in sorted(filter(visible, subject_dir.iterdir())):
            if not seq_dir.is_dir():
                continue
            code = read_label_code(root / "Emotion" / subject_dir.name / seq_dir.name)
            if code is None:
                continue
            frames = sorted(
                (f for f in seq_dir.iterdir() if visible(f) and f.suffix.lower() in IMAGE_SUFFIXES), key=natural_key
            )
            if not frames:
                continue
            lm_dir = root / "Landmarks" / subject_dir.name / seq_dir.name
            landmarks = tuple(
                (lm_dir / f"{f.stem}_landmarks.txt") if (lm_dir / f"{f.stem}_landmarks.txt").is_file() else None
                for f in frames
            )
            found.append(
                CKSequence(subject_dir.name, f"{subject_dir.name}/{seq_dir.name}", code, tuple(frames), landmarks)
            )
    return found


def preprocess_ck_sequence(seq: CKSequence, crop: CropConfig, detector: FaceDetector) -> np.ndarray:
    grays, boxes = [], []
    for frame_path, lm_path in zip(seq.frames, seq.landmarks):
        image = cv2.imread(str(frame_path), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise ValueError(f"cannot read image {frame_path}")
        gray = to_gray(image)
        points = read_landmarks(lm_path) if lm_path is not None else None
        face = landmarks_face(points) if points is not None else detector(gray)
        grays.append(gray)
        boxes.append(np.full(FACE_DIM, np.nan, np.float32) if face is None else face)
    return crop_sequence(grays, np.stack(boxes), crop)


PEAK_STILLS_FILE = "peak_stills.json"


def peak_still_classes(root: Path) -> set[str] | None:
    """The classes whose peak frames a CK+-layout tree allows as stills (None: all of them)."""
    path = Path(root) / PEAK_STILLS_FILE
    if not path.is_file():
        return None
    try:
        wanted = json.loads(path.read_text())["classes"]
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f'{path}: expected {{"classes": [...]}}: {e}') from e
    unknown = set(wanted) - set(CLASSES)
    if unknown:
        raise ValueError(f"{path}: unknown classes {sorted(unknown)}")
    return set(wanted)


def load_ckplus(root, crop: CropConfig = CropConfig(), cache_dir=None, classes=CLASSES, progress=True) -> Dataset:
    root = Path(root)
    seqs = find_ckplus(root)
    # CK+ codes: 1..7 = CLASSES; 0 (neutral) is only used when the caller's classes include it.
    names = {i + 1: c for i, c in enumerate(CLASSES)} | {0: "neutral"}
    seqs = [s for s in seqs if names.get(s.code) in classes]
    if not seqs:
        raise ValueError(f"{root} holds no labelled sequences of the classes {', '.join(classes)}")
    files = [p for s in seqs for p in s.frames + tuple(lm for lm in s.landmarks if lm)]
    meta = [(s.subject, s.name, classes.index(names[s.code])) for s in seqs]
    arrays = _cached(
        "ckplus",
        root,
        files,
        crop,
        classes,
        cache_dir,
        lambda: _map(lambda s, d=FaceDetector(): preprocess_ck_sequence(s, crop, d), seqs, progress, "CK+ sequences"),  # noqa: B008  one detector per load
    )
    videos = [Video(subj, name, label, frames) for (subj, name, label), frames in zip(meta, arrays)]
    if NEUTRAL in classes:
        # CK+ sequences start neutral: their onset frame is a neutral still. Their peak frame is
        # added as a still of the expression too, or stillness itself would mean "neutral": the
        # first 8-class model, trained with onset stills only, called 17 of 21 held-out real
        # smiles shown as still clips neutral (docs/real-faces.md).
        neutral = classes.index(NEUTRAL)
        expressive = [v for v in videos if v.label != neutral and len(v.frames) >= 4]
        still_classes = peak_still_classes(root)
        videos += [Video(v.subject, v.name + "#onset", neutral, v.frames[:1]) for v in expressive]
        videos += [
            Video(v.subject, v.name + "#peak", v.label, v.frames[-1:])
            for v in expressive
            if still_classes is None or classes[v.label] in still_classes
        ]
        videos = [late_part(v) if v.label != neutral else v for v in videos]
    return Dataset(videos, tuple(classes), "ckplus", str(root))


LATE_FROM = 2 / 3  # how far from the first frame to the peak a clip of an expression sequence must end, at least


def late_part(video: Video, late_from: float = LATE_FROM) -> Video:
    """An expression sequence cut so that every clip of it ends past `late_from` of the way to its
    peak frame (a sequence shorter than that allows is kept whole; a still is left alone).

    For the 8-class model only: a clip carries its sequence's label, and the first clips of a
    neutral-to-peak sequence show a face that has hardly begun to move. Labelled "contempt", such
    a clip teaches that a resting face is contempt, which is how served-v4 read some held-out
    people's calm faces (docs/real-faces.md). The protocol's 7-class sets keep whole sequences."""
    last = len(video.frames) - 1
    start = max(0, min(last + 1 - CLIP_LENGTH, math.ceil(late_from * last) - (CLIP_LENGTH - 1)))
    if start == 0:
        return video
    return Video(video.subject, video.name, video.label, video.frames[start:])


# --- one folder per class ----------------------------------------------------------------


def subject_from_filename(path: Path) -> str:
    """The documented rule: the file name up to its first underscore ("alice_take2.mp4" -> "alice")."""
    return path.stem.split("_", 1)[0]


def preprocess_video_file(path: Path, crop: CropConfig, max_frames: int = 900) -> np.ndarray:
    detector = FaceDetector()
    grays = [frame.gray for frame in read_frames(path, max_frames=max_frames)]
    return crop_sequence(grays, detector.detect_video(grays), crop)


def class_folder_videos(root, classes=CLASSES) -> list[tuple[Path, int, str]]:
    """(video file, class index, subject) of ROOT/<class>/<video>, in natural order."""
    root = Path(root)
    entries = []
    for class_dir in sorted(filter(visible, root.iterdir())):
        if not class_dir.is_dir():
            continue
        if class_dir.name not in classes:
            log.warning("skipping folder %s: not one of the classes %s", class_dir, ", ".join(classes))
            continue
        for f in sorted(filter(visible, class_dir.iterdir()), key=natural_key):
            if f.is_file() and f.suffix.lower() in VIDEO_SUFFIXES:
                entries.append((f, classes.index(class_dir.name), subject_from_filename(f)))
    if not entries:
        raise ValueError(f"{root} holds no videos in class folders named after {', '.join(classes)}")
    return entries


def load_class_folders(
    root, crop: CropConfig = CropConfig(), cache_dir=None, classes=CLASSES, progress=True
) -> Dataset:
    return _load_video_files(
        Path(root), class_folder_videos(root, classes), "folders", crop, cache_dir, classes, progress
    )


def cremad_videos(root, classes=CLASSES) -> list[tuple[Path, int, str]]:
    """(video file, class index, actor) of CREMA-D's videos (any folder depth):
    `ActorID_Sentence_EMO_Level.flv`; classes not in `classes` (NEU without a neutral class) are left out."""
    root = Path(root)
    entries = []
    for f in sorted(root.rglob("*"), key=natural_key):
        m = CREMAD_NAME.match(f.stem)
        if m and visible(f) and f.suffix.lower() in VIDEO_SUFFIXES and CREMAD_EMOTIONS[m.group(2)] in classes:
            entries.append((f, classes.index(CREMAD_EMOTIONS[m.group(2)]), m.group(1)))
    if not entries:
        raise ValueError(
            f"{root} holds no CREMA-D videos (ActorID_Sentence_EMO_Level.flv) of the classes {', '.join(classes)}"
        )
    return entries


def load_cremad(root, crop: CropConfig = CropConfig(), cache_dir=None, classes=CLASSES, progress=True) -> Dataset:
    return _load_video_files(Path(root), cremad_videos(root, classes), "cremad", crop, cache_dir, classes, progress)


def _load_video_files(root: Path, entries, layout: str, crop, cache_dir, classes, progress) -> Dataset:
    arrays = _cached(
        layout,
        root,
        [f for f, _, _ in entries],
        crop,
        classes,
        cache_dir,
        lambda: _map(lambda e: _video_or_none(e[0], crop), entries, progress, "videos"),
    )
    videos = [
        Video(subject, str(f.relative_to(root)), label, frames)
        for (f, label, subject), frames in zip(entries, arrays)
        if len(frames)
    ]
    return Dataset(videos, tuple(classes), layout, str(root))


def _video_or_none(path: Path, crop: CropConfig) -> np.ndarray:
    try:
        return preprocess_video_file(path, crop)
    except VideoError as e:
        log.warning("skipping %s: %s", path, e.message)
        return np.zeros((0, crop.size, crop.size), np.uint8)


def is_cremad(root: Path) -> bool:
    return any(CREMAD_NAME.match(f.stem) for f in list(root.rglob("*.flv"))[:50] + list(root.rglob("*.mp4"))[:50])


def labelled_video_files(root, classes=CLASSES) -> tuple[str, list[tuple[Path, int, str]]]:
    """(layout, [(video file, class index, subject)]) of a tree of video files: CREMA-D if its
    videos are named that way, else class folders. Training and benchmarks/video_eval.py both
    read videos through this, so they agree on what a tree holds."""
    root = Path(root)
    if is_cremad(root):
        return "cremad", cremad_videos(root, classes)
    return "folders", class_folder_videos(root, classes)


def load_dataset(root, crop: CropConfig = CropConfig(), cache_dir=None, classes=CLASSES, progress=True) -> Dataset:
    """A pack if ROOT is a .npz file; CK+ layout if ROOT has cohn-kanade-images/; a FER+ split if it
    has label.csv; class folders of images if it has those; else the video files of labelled_video_files."""
    root = Path(root)
    if root.suffix == ".npz" and root.is_file():
        return load_pack(root, crop, classes)
    if (root / "cohn-kanade-images").is_dir():
        return load_ckplus(root, crop=crop, cache_dir=cache_dir, classes=classes, progress=progress)
    if is_ferplus(root):
        return load_ferplus(root, crop, cache_dir, classes, progress)
    stills = image_folder_stills(root, classes) if root.is_dir() else []
    if stills:  # class folders of photos, listed once
        return load_stills(root, stills, "images", crop, cache_dir, classes, progress)
    layout, entries = labelled_video_files(root, classes)
    return _load_video_files(root, entries, layout, crop, cache_dir, classes, progress)


def calibration_clips(root, crop: CropConfig, classes, faces: int) -> tuple[np.ndarray, str]:
    """(faces, 8, S, S) uint8 clips of a data set's faces to calibrate int8 on (training/runtime.py,
    quantise_network): a still held for 8 frames, a video's last 8 frames (where its expression is); the
    first `faces` of the set in its own order. And a line saying what they are."""
    videos = load_dataset(root, crop, classes=classes, progress=False).videos[:faces]
    if not videos:
        raise ValueError(f"{root}: no faces found to calibrate on")
    clips = [
        np.repeat(v.frames[:1], CLIP_LENGTH, axis=0) if len(v.frames) < CLIP_LENGTH else v.frames[-CLIP_LENGTH:]
        for v in videos
    ]
    return np.stack(clips).astype(np.uint8), f"the first {len(clips)} faces of {Path(root).name}"


def load_datasets(roots, crop: CropConfig = CropConfig(), cache_dir=None, classes=CLASSES, progress=True) -> Dataset:
    """Several roots as one data set (e.g. drawn + photo-real). Subjects are prefixed with their
    root's folder name when there is more than one root, so two sets' "S005" stay two people."""
    sets = [load_dataset(r, crop, cache_dir, classes, progress) for r in roots]
    if len(sets) == 1:
        return sets[0]
    names = [Path(r).name for r in roots]
    videos = [
        Video(f"{name}:{v.subject}", f"{name}/{v.name}", v.label, v.frames, v.target, source)
        for source, (name, d) in enumerate(zip(names, sets))
        for v in d.videos
    ]
    return Dataset(videos, tuple(classes), "+".join(d.layout for d in sets), " + ".join(d.root for d in sets))


# --- still images ------------------------------------------------------------------------

# FER+'s vote columns, in label.csv's order (Barsoum et al. 2016; the FERPlus generator's layout)
FERPLUS_VOTES = (
    "neutral",
    "happy",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "not_a_face",
)
FERPLUS_LABELS = "label.csv"
# Folder names the common copies of RAF-DB, AffectNet and FER2013 use, read as the model's classes
CLASS_ALIASES = {
    "angry": "anger",
    "disgusted": "disgust",
    "fearful": "fear",
    "happiness": "happy",
    "sad": "sadness",
    "surprised": "surprise",
    "neutrality": "neutral",
}


@dataclass(frozen=True)
class Still:
    path: Path
    label: int  # index into the data set's classes
    target: np.ndarray | None  # (K,) vote shares, or None


def ferplus_target(votes, classes=CLASSES_WITH_NEUTRAL) -> np.ndarray | None:
    """The training target of one FER+ face: each class's share of its votes, or None where the face
    is not one of `classes`' to learn from.

    Barsoum et al.'s rule: a class with a single vote of ten is an annotator's outlier and dropped; a
    face whose most-voted column is "unknown" or "not a face", or whose votes fall mostly outside
    `classes` (neutral in a 7-class run), is left out. The majority label is the target's argmax."""
    votes = np.asarray(votes, np.float64)
    votes = np.where(votes <= 1, 0.0, votes)
    if votes.sum() == 0 or FERPLUS_VOTES[int(votes.argmax())] not in classes:
        return None
    target = np.array([votes[FERPLUS_VOTES.index(c)] if c in FERPLUS_VOTES else 0.0 for c in classes])
    return target / target.sum() if target.sum() > 0.5 * votes.sum() else None


def find_ferplus(root: Path, classes=CLASSES_WITH_NEUTRAL) -> list[Still]:
    """The faces of one FER+ split folder (FER2013Train, FER2013Valid or FER2013Test) that ferplus_target keeps."""
    stills = []
    with open(root / FERPLUS_LABELS, newline="") as f:
        for row in csv.reader(f):
            if len(row) < 2 + len(FERPLUS_VOTES) or not (root / row[0]).is_file():
                continue
            target = ferplus_target([float(v) for v in row[2 : 2 + len(FERPLUS_VOTES)]], classes)
            if target is not None:
                stills.append(Still(root / row[0], int(target.argmax()), target.astype(np.float32)))
    if not stills:
        raise ValueError(f"{root}: {FERPLUS_LABELS} names no face of the classes {', '.join(classes)}")
    return stills


def is_ferplus(root: Path) -> bool:
    return (root / FERPLUS_LABELS).is_file()


def image_folder_stills(root: Path, classes=CLASSES) -> list[Still]:
    """ROOT/<class>/<image>: one still per image; a folder may be named as CLASS_ALIASES says."""
    stills = []
    for class_dir in sorted(filter(visible, root.iterdir())):
        name = CLASS_ALIASES.get(class_dir.name.lower(), class_dir.name.lower())
        if not class_dir.is_dir() or name not in classes:
            continue
        stills += [
            Still(f, classes.index(name), None)
            for f in sorted(filter(visible, class_dir.iterdir()), key=natural_key)
            if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
        ]
    return stills


STILL_BATCH = 256


def preprocess_stills(paths: list[Path], crop: CropConfig, detector: FaceDetector) -> np.ndarray:
    """(N, S, S) crops of still photos, found and aligned as the service finds and aligns a frame's
    face. A photo in which the detector finds no face is taken to be a face crop already (FER's
    48 px faces are: their own detector cut them) and framed as full_frame_face frames it."""
    grays = []
    for p in paths:
        image = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise ValueError(f"cannot read image {p}")
        grays.append(to_gray(image))
    faces = detector.detect_whole(grays)
    return np.stack(
        [crop_frame(g, full_frame_face(g.shape, crop) if f is None else f, crop) for g, f in zip(grays, faces)]
    )


def load_stills(
    root,
    stills: list[Still],
    layout: str,
    crop: CropConfig = CropConfig(),
    cache_dir=None,
    classes=CLASSES,
    progress=True,
) -> Dataset:
    """Stills as one-frame videos. Each still is its own subject: these sets do not say who is who."""
    root = Path(root)
    batches = [stills[i : i + STILL_BATCH] for i in range(0, len(stills), STILL_BATCH)]

    def compute() -> list[np.ndarray]:  # the detector is built only where the cache does not hold the crops
        detector = FaceDetector()
        return _map(lambda b: preprocess_stills([s.path for s in b], crop, detector), batches, progress, "stills")

    arrays = _cached(layout, root, [s.path for s in stills], crop, classes, cache_dir, compute)
    frames = np.concatenate(arrays) if arrays else np.zeros((0, crop.size, crop.size), np.uint8)
    videos = [
        Video(s.path.stem, str(s.path.relative_to(root)), s.label, frames[i : i + 1], s.target)
        for i, s in enumerate(stills)
    ]
    return Dataset(videos, tuple(classes), layout, str(root))


def load_ferplus(
    root, crop: CropConfig = CropConfig(), cache_dir=None, classes=CLASSES_WITH_NEUTRAL, progress=True
) -> Dataset:
    root = Path(root)
    return load_stills(root, find_ferplus(root, classes), "ferplus", crop, cache_dir, classes, progress)


def load_image_folders(
    root, crop: CropConfig = CropConfig(), cache_dir=None, classes=CLASSES, progress=True
) -> Dataset:
    root = Path(root)
    stills = image_folder_stills(root, classes)
    if not stills:
        raise ValueError(f"{root} holds no images in class folders named after {', '.join(classes)}")
    return load_stills(root, stills, "images", crop, cache_dir, classes, progress)


# --- packs ---------------------------------------------------------------------------------

PACK_FORMAT = 1


def save_pack(dataset: Dataset, path, crop: CropConfig) -> Path:
    """Write a loaded data set (stills included) to one compressed .npz."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": PACK_FORMAT,
        "classes": list(dataset.classes),
        "layout": dataset.layout,
        "root": dataset.root,
        "crop": crop.to_dict(),
    }
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(
        tmp,
        meta=np.array(json.dumps(meta)),
        lengths=np.array([len(v.frames) for v in dataset.videos], dtype=np.int64),
        frames=np.concatenate([v.frames for v in dataset.videos]),
        labels=dataset.labels,
        subjects=np.array(dataset.subjects),
        names=np.array([v.name for v in dataset.videos]),
    )
    os.replace(tmp, path)
    return path


def load_pack(path, crop: CropConfig = CropConfig(), classes=CLASSES) -> Dataset:
    """A pack written by save_pack. Its crops must have been made with `crop` and its labels
    index `classes`: a pack is never silently re-labelled or re-cropped."""
    path = Path(path)
    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
        if meta.get("format") != PACK_FORMAT:
            raise ValueError(f"{path}: pack format {meta.get('format')}, this code reads {PACK_FORMAT}")
        if CropConfig.from_dict(meta["crop"]) != crop:  # packs from before the align fields read as unaligned
            raise ValueError(f"{path}: packed with crop settings {meta['crop']}, wanted {crop.to_dict()}")
        if tuple(meta["classes"]) != tuple(classes):
            raise ValueError(
                f"{path}: packed for the classes {', '.join(meta['classes'])} "
                f"(with or without --neutral as when packed), not {', '.join(classes)}"
            )
        frames = np.split(z["frames"], np.cumsum(z["lengths"])[:-1])
        videos = [
            Video(str(s), str(n), int(y), f) for s, n, y, f in zip(z["subjects"], z["names"], z["labels"], frames)
        ]
    # Recorded in checkpoints as the data's root: the pack, and the trees it was made from.
    return Dataset(videos, tuple(classes), f"pack ({meta['layout']})", f"{path} = {meta['root']}")


# --- helpers -------------------------------------------------------------------------------


def _map(fn, items, progress: bool, desc: str) -> list:
    # OpenCV and FFmpeg release the GIL, so threads use every core without pickling arrays.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return list(tqdm(pool.map(fn, items), total=len(items), desc=desc, disable=not progress, leave=False))


def _cached(layout, root: Path, files, crop: CropConfig, classes, cache_dir, compute) -> list[np.ndarray]:
    """The preprocessed arrays, from the cache when the same files were preprocessed the same way."""
    h = hashlib.sha256(json.dumps([CACHE_VERSION, layout, str(root.resolve()), crop.to_dict(), list(classes)]).encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    cache = Path(cache_dir or default_cache_dir()) / f"{layout}-{h.hexdigest()[:24]}.npz"
    if cache.is_file():
        with np.load(cache) as z:
            lengths, frames = z["lengths"], z["frames"]
        return np.split(frames, np.cumsum(lengths)[:-1])
    arrays = compute()
    cache.parent.mkdir(parents=True, exist_ok=True)
    # Each process writes its own temporary file: two runs preprocessing the same data at once
    # (recipe_study --jobs) each replace the cache with the same arrays instead of racing on one file.
    tmp = cache.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(tmp, lengths=np.array([len(a) for a in arrays]), frames=np.concatenate(arrays))
    os.replace(tmp, cache)  # atomic: a killed run never leaves a half-written cache behind
    return arrays
