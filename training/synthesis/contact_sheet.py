"""Contact sheets: one picture of a CK+-layout data set, a row per class (a neutral first frame, then
peak frames of different people), to see at a glance what a synthetic set teaches.

`write_contact_sheet` crops faces by their landmark files (the drawn sets of
training.synthesis.drawn_dataset); `write_photoreal_contact_sheet` crops the photo-real sets (which
have no landmark files) as the served model's face detector does, adds the neutral row and draws the
London Set's CC BY attribution under the rows.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from training.synthesis.facs import CLASSES
from training.synthesis.photoreal_dataset import CODES


def read_landmarks(path) -> np.ndarray:
    return np.loadtxt(path, dtype=np.float32).reshape(68, 2)


def _face_tile(image_path: Path, lm_path: Path, tile: int) -> np.ndarray:
    img = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
    pts = read_landmarks(lm_path)
    lo, hi = pts.min(0), pts.max(0)
    c = (lo + hi) / 2 - (0, 0.1 * (hi[1] - lo[1]))  # the landmarks stop at the brows: lift for the forehead
    side = 1.4 * max(hi - lo)
    x0, y0 = int(round(c[0] - side / 2)), int(round(c[1] - side / 2))
    s = int(round(side))
    pad = max(0, -x0, -y0, x0 + s - img.shape[1], y0 + s - img.shape[0])
    if pad:
        img = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    crop = img[y0 + pad : y0 + pad + s, x0 + pad : x0 + pad + s]
    return cv2.resize(crop, (tile, tile), interpolation=cv2.INTER_AREA)


def _labelled_sequences(root: Path) -> dict[int, list[tuple[str, str, str]]]:
    """code -> [(subject, sequence, last frame stem)] from the Emotion files."""
    found: dict[int, list] = {}
    for f in sorted((root / "Emotion").glob("*/*/*_emotion.txt")):
        code = int(round(float(f.read_text().split()[0])))
        found.setdefault(code, []).append((f.parent.parent.name, f.parent.name, f.name[: -len("_emotion.txt")]))
    return found


def _landmark_tile(root: Path, subject: str, seq: str, stem: str, tile: int) -> np.ndarray:
    return _face_tile(
        root / "cohn-kanade-images" / subject / seq / f"{stem}.png",
        root / "Landmarks" / subject / seq / f"{stem}_landmarks.txt",
        tile,
    )


def write_contact_sheet(
    dataset_dir,
    out_png,
    per_class: int = 6,
    rows_of=None,
    tile_of=_landmark_tile,
    caption: tuple[str, ...] = (),
    noun: str = "subject",
) -> None:
    """One row per class: a neutral first frame, then the peak frames of `per_class` different
    subjects (the first of them the neutral frame's own sequence), face crops labelled with
    the class name. `rows_of` ((code, name) pairs, default the 7 classes) and `tile_of` (how a
    frame becomes a face tile) let other CK+-layout sets (write_photoreal_contact_sheet) use the same sheet."""
    root = Path(dataset_dir)
    tile, gap, label_w, head_h = 90, 2, 84, 20  # sized so a sheet of noisy colour crops stays < 600 KB
    found = _labelled_sequences(root)
    white = lambda h, w: np.full((h, w, 3), 255, np.uint8)  # noqa: E731
    rows = []
    for code, name in rows_of or list(enumerate(CLASSES, start=1)):
        if code not in found:
            continue
        seqs, seen = [], set()
        for subj, num, stem in found[code]:
            if subj not in seen:
                seen.add(subj)
                seqs.append((subj, num, stem))
        seqs = seqs[:per_class]
        stems = [(subj, num, f"{subj}_{num}_{1:08d}") for subj, num, _ in seqs[:1]] + seqs
        tiles = [tile_of(root, a, b, c, tile) for a, b, c in stems]
        tiles += [white(tile, tile)] * (per_class + 1 - len(tiles))
        label = white(tile, label_w)
        cv2.putText(label, name, (4, tile // 2 + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        cells = [label]
        for t in tiles:
            cells += [t, white(tile, gap)]
        rows += [np.hstack(cells), white(gap, sum(c.shape[1] for c in cells))]
    if not rows:
        raise ValueError(f"{root} holds no labelled sequences")
    sheet = np.vstack(rows)
    width = sheet.shape[1]
    head = white(head_h, width)
    cv2.putText(head, "neutral", (label_w + 4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(
        head,
        f"peak frames (first: the same sequence), one {noun} each",
        (label_w + tile + gap + 4, 14),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.42,
        (0, 0, 0),
        1,
        cv2.LINE_AA,
    )
    parts = [head, sheet]
    if caption:
        foot = white(14 * len(caption) + 6, width)
        for j, text in enumerate(caption):
            cv2.putText(foot, text, (4, 13 + 14 * j), cv2.FONT_HERSHEY_SIMPLEX, 0.36, (60, 60, 60), 1, cv2.LINE_AA)
        parts.append(foot)
    Path(out_png).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out_png), np.vstack(parts), [cv2.IMWRITE_PNG_COMPRESSION, 9])


# --------------------------------------------------------------------------------------------
# Photo-real sets
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _detector():
    from training.faces import FaceDetector

    return FaceDetector()


def _photo_tile(root: Path, subject: str, seq: str, stem: str, tile: int) -> np.ndarray:
    """A colour face crop, framed as the served model's crops are (training.faces: the detector's
    box, 1.2 x; the whole picture where no face is found)."""
    from training.faces import crop_face, full_frame_box, to_gray

    img = cv2.imread(str(root / "cohn-kanade-images" / subject / seq / f"{stem}.png"), cv2.IMREAD_COLOR)
    if img is None:
        return np.full((tile, tile, 3), 255, np.uint8)
    face = _detector()(to_gray(img))
    return crop_face(img, full_frame_box(img.shape) if face is None else face[:3], tile, 1.2)


def write_photoreal_contact_sheet(dataset_dir, out_png, per_class=6) -> None:
    """write_contact_sheet's sheet of a photo-real set, one row per class and neutral, with face crops (1.2 x the detector's box)
    and the London Set's CC BY attribution drawn under the rows."""
    caption = (
        "Faces: Face Research Lab London Set. DeBruine, L., & Jones, B. (2017). figshare.",
        "https://doi.org/10.6084/m9.figshare.5047666.v5 - CC BY 4.0. Happy = real smile (morphed);",
        "other expressions are synthetic warps of the neutral photos (training/synthesis/photoreal.py).",
    )
    rows = [(CODES[c], c) for c in CLASSES] + [(0, "neutral")]
    write_contact_sheet(
        dataset_dir, out_png, per_class, rows_of=rows, tile_of=_photo_tile, caption=caption, noun="identity"
    )
