"""Where the face is in each frame, and the crop the network sees. One implementation for
training and serving, so the served model gets exactly the kind of input it learned from.

    frame -> face (BlazeFace: 6 landmarks; or CK+'s 68) -> smoothed over time -> square gray crop

A face is a row of FACE_DIM numbers: the box (cx, cy, side), then MediaPipe's 6 landmarks
(x, y each: right eye, left eye, nose tip, mouth centre, right ear, left ear; "right" is the
person's, on the image's left). The box is a square in frame pixels, the size and place of the
Haar frontal-face box ramfer's first models were trained on: it is computed from the eyes and
the mouth (constants fitted on real faces, docs/history.md: `git show 9eafc5c:benchmarks/calibrate_face_box.py`), so a checkpoint
trained on Haar-box crops keeps its framing behind the CNN detector, and CK+ landmarks give the
same box. Two crops: `crop_face` (the box's square, today's checkpoints) and `align_face` (eyes
level at a fixed place: CropConfig.align, for checkpoints trained that way).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

FACE_DIM = 3 + 12  # box (cx, cy, side) + 6 landmarks (x, y)
# Where a face was just found, the next frames are searched in a square this many box sides wide
# around it first (the box is about the face's width): room for a head that moves or turns for half
# a second (a batch of 16 frames at 30 fps), the face a third of the 128 px input. The square is at
# most 2/3 of the frame's long side, so the network never sees the face smaller than in the whole
# frame at 192 px (a close-up keeps its detail). Margins 2-4 were tried against the London
# templates and on rolled faces (benchmarks/detector_regions.py, tests/test_faces.py); see
# docs/performance.md.
REGION_MARGIN = 3.0
SMALL_FRAME = 160  # frames below this side are ready-made crops: searched whole (framed_small)


@dataclass(frozen=True)
class CropConfig:
    size: int = 48  # side of the crop given to the network (the model's input_size)
    scale: float = 1.2  # crop side / detector box side: forehead to chin, as common FER crops
    smooth_radius: int = 3  # a face is the mean of the detections within +-radius frames
    # Aligned crops (align_face): rotated so the eyes are level, scaled so they are eye_distance
    # of the side apart, their midpoint centred at eye_height of the side from the top. The
    # defaults frame a face as the box crop does on average (fitted with the box constants below).
    # Checkpoints without these fields (all made before aligned crops) read as align=False.
    align: bool = False
    eye_distance: float = 0.32
    eye_height: float = 0.42

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> CropConfig:
        """A checkpoint's or pack's crop section; fields it lacks take the defaults of its time."""
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def to_gray(image: np.ndarray) -> np.ndarray:
    """uint8 gray from a gray, BGR or BGRA image (16-bit images are scaled down)."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    if image.ndim == 2:
        return image
    if image.shape[2] == 1:
        return image[:, :, 0]
    code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
    return cv2.cvtColor(image, code)


class FaceDetector:
    """Faces of frames as FACE_DIM rows (box and landmarks): MediaPipe's BlazeFace full-range
    (training/detector.py), on the CPU or CUDA, a list of frames through the network at once.
    `detect_people` gives every face of each frame (the service follows each person:
    training/tracks.py); `detect_batch` the largest (training's videos show one person),
    `__call__` one frame's; `detect_video` a whole video, each batch looking first where the
    face was in the batch before. Both are detect_people's searches. `runtime` chooses what runs the
    network (training/runtime.py: auto, ONNX Runtime on a CPU where it can; torch; onnx), the
    export looked for in `export_folders` first."""

    def __init__(self, max_side: int | None = None, device: str = "cpu", runtime: str = "auto", export_folders=()):
        from training.detector import INPUT, REGION_INPUT, BlazeFace

        self.net = BlazeFace(device, runtime=runtime, export_folders=tuple(export_folders))
        self.region_cap = (
            REGION_INPUT / INPUT
        )  # a region's side, at most this share of the frame's long side (max_side: accepted for old callers, unused)

    def __call__(self, gray: np.ndarray) -> np.ndarray | None:
        return self.detect_batch([gray])[0]

    def detect_batch(self, grays: list[np.ndarray], near: np.ndarray | None = None) -> list[np.ndarray | None]:
        """The largest face of each frame (training's videos show one person): detect_people's
        faces, searched near the face found before these frames (`near`, a FACE_DIM row)."""
        found = self.detect_people(grays, [] if near is None else [near], look_for_new=False)
        return [max(faces, key=lambda r: r[2]) if faces else None for faces in found]

    def detect_people(self, grays: list[np.ndarray], near=(), look_for_new: bool = True) -> list[list[np.ndarray]]:
        """Every face of each frame, as FACE_DIM rows.

        Where faces were found just before these frames (`near`: a row per person being
        followed), the frames are searched in a square of REGION_MARGIN box sides around each,
        at 128 px: the face a third of the input, its landmarks measured as training measured
        them. The whole frame (and its tiles, where it shows no face) is searched when nothing is
        near, in the frames where a region shows no face, and, with `look_for_new`, in the first
        frame of the batch, where people who come in are found (a face that comes and goes
        between two such searches can be missed). The faces a whole-frame search finds first are
        searched in their regions too, so every face of a video is measured the same way. A face
        found by several searches is kept once, as measured by the search centred nearest to it.
        Frames under SMALL_FRAME px are searched whole."""
        if min(grays[0].shape[:2]) < SMALL_FRAME:
            return self.whole_faces(grays)
        near = [r for r in near if r is not None and not np.isnan(r[:3]).any()]
        whole: list[list[np.ndarray] | None] = [None] * len(grays)
        if not near:
            whole = self.whole_faces(grays)
            near = next((faces for faces in whole if faces), [])
            if not near:
                return whole
        elif look_for_new:  # someone who came in is searched near from this batch's first frame on
            whole[0] = self.whole_faces(grays[:1])[0]
            near = near + [r for r in whole[0] if all(box_iou(r, q) <= SAME_FACE_IOU for q in near)]
        regions = []
        for row in near:
            cx, cy, side = (float(v) for v in row[:3])
            side = min(REGION_MARGIN * side, max(grays[0].shape[:2]) * self.region_cap)
            regions.append((cx - side / 2, cy - side / 2, side))
        n = len(grays)
        found = self.net.detect_regions([g for _ in regions for g in grays], [r for r in regions for _ in grays])
        candidates: list[list[tuple[float, np.ndarray]]] = [[] for _ in grays]
        missed = set()
        for k, (x0, y0, side) in enumerate(regions):
            for i in range(n):
                faces = found[k * n + i]
                if not faces:
                    missed.add(i)
                for _, points, _ in faces:
                    row = face_row(points)
                    candidates[i].append((np.hypot(row[0] - x0 - side / 2, row[1] - y0 - side / 2) / side, row))
        todo = sorted(missed - {i for i, w in enumerate(whole) if w is not None})
        for i, faces in zip(todo, self.whole_faces([grays[i] for i in todo]) if todo else []):
            whole[i] = faces
        for i, faces in enumerate(whole):
            candidates[i] += [(np.inf, row) for row in faces or []]
        return [distinct_faces(c) for c in candidates]

    def whole_faces(self, grays: list[np.ndarray]) -> list[list[np.ndarray]]:
        """Every face of each whole frame (letterboxed to 192 px). Frames with no face are searched
        again in square tiles, so a small face is seen larger: letterboxed whole, a 640x360 frame
        shrinks 3.3x to 192 px and the network finds 7 of 102 London faces 40 px wide
        (benchmarks/detector_choice.py); a 360 px tile shrinks 1.9x."""
        framed = [framed_small(g) for g in grays]
        rows = [
            [face_row(points - pad) for _, points, _ in faces]
            for faces, (_, pad) in zip(self.net.detect([f for f, _ in framed]), framed)
        ]
        tiles = [
            (i, x, y, t) for i, (g, found) in enumerate(zip(grays, rows)) if not found for x, y, t in square_tiles(g)
        ]
        if tiles:
            for (i, x, y, _), faces in zip(tiles, self.net.detect([t for *_, t in tiles])):
                rows[i] += [face_row(points + np.array([x, y], np.float32)) for _, points, _ in faces]
        # the largest first, and one row per face where tiles overlap
        return [distinct_faces([(-r[2], r) for r in found]) for found in rows]

    def detect_whole(self, grays: list[np.ndarray]) -> list[np.ndarray | None]:
        """The largest face of each whole frame (see whole_faces), or None."""
        return [faces[0] if faces else None for faces in self.whole_faces(grays)]

    def detect_video(self, grays: list[np.ndarray], batch: int = 16) -> np.ndarray:
        """(T, FACE_DIM) raw faces of a video's frames (NaN where none), detected `batch` frames
        at a time, each batch near the last face found before it: the service's track_faces
        does the same as it streams."""
        rows, last = [], None
        for b in range(0, len(grays), batch):
            found = self.detect_batch(grays[b : b + batch], near=last)
            last = last_face(found)
            rows += [np.full(FACE_DIM, np.nan, np.float32) if r is None else r for r in found]
        return np.stack(rows).reshape(-1, FACE_DIM)


def last_face(rows: list[np.ndarray | None]) -> np.ndarray | None:
    """Where the next batch of a video is searched first: the batch's last face found; None after
    a batch with no face, so the next one is searched whole."""
    return next((r for r in reversed(rows) if r is not None), None)


SAME_FACE_IOU = 0.5  # two rows whose boxes overlap more than this are one face seen twice


def distinct_faces(candidates: list[tuple[float, np.ndarray]]) -> list[np.ndarray]:
    """(priority, FACE_DIM row) candidates -> rows, one per face: by priority (lowest first), a
    row is kept unless its box overlaps one kept already by more than SAME_FACE_IOU."""
    kept: list[np.ndarray] = []
    for _, row in sorted(candidates, key=lambda c: c[0]):
        if all(box_iou(row, k) <= SAME_FACE_IOU for k in kept):
            kept.append(row)
    return kept


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Overlap (intersection over union) of two square boxes (cx, cy, side, ...)."""
    (ax, ay, aside), (bx, by, bside) = a[:3], b[:3]
    ix = max(0.0, min(ax + aside / 2, bx + bside / 2) - max(ax - aside / 2, bx - bside / 2))
    iy = max(0.0, min(ay + aside / 2, by + bside / 2) - max(ay - aside / 2, by - bside / 2))
    inter = ix * iy
    return float(inter / (aside**2 + bside**2 - inter + 1e-9))


def square_tiles(gray: np.ndarray) -> list[tuple[int, int, np.ndarray]]:
    """(x, y, tile): squares of the frame's short side along its long side, overlapping by at
    least a quarter, for frames at least 1.5x longer than wide (a square frame is one tile: itself)."""
    h, w = gray.shape[:2]
    short, long_ = min(h, w), max(h, w)
    if long_ < 1.5 * short:
        return []
    n = int(np.ceil((long_ - short) / (0.75 * short))) + 1
    starts = np.linspace(0, long_ - short, n).round().astype(int)
    return [(s, 0, gray[:, s : s + short]) if w > h else (0, s, gray[s : s + short]) for s in starts]


def framed_small(gray: np.ndarray) -> tuple[np.ndarray, int]:
    """A frame under 160 px (a ready-made face crop, as some CK+ copies hold) gets a border of
    half its side (repeated edge pixels): the full-range network was trained on faces that do
    not fill the picture. Returns the frame and the border width to subtract from points."""
    side = min(gray.shape[:2])
    if side >= SMALL_FRAME:
        return gray, 0
    pad = side // 2
    return cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE), pad


def face_row(points: np.ndarray) -> np.ndarray:
    """(6, 2) BlazeFace landmarks -> a FACE_DIM row: the Haar-like box from the eyes and mouth, then the points."""
    p = np.asarray(points, np.float32)
    box = box_from_eyes_mouth(p[0], p[1], p[3], DETECTOR_BOX)
    return np.concatenate([box, p.reshape(-1)]).astype(np.float32)


# The Haar box from facial points: centre = eye midpoint + A * (mouth - eye midpoint),
# side = B * |mouth - eye midpoint| + C * |right eye - left eye|. Fitted on real faces (the
# London set's Haar boxes; the script is in git, 9eafc5c:benchmarks/calibrate_face_box.py): against the templates' pupils and
# lip outline (what CK+'s landmarks give; medians, C = 0), and against BlazeFace's own eye and
# mouth points (what the detector gives; least squares: the eye distance predicts the Haar box's
# size better than the eye-mouth distance alone, mean IoU 0.920 against 0.901 on 204 photos).
TEMPLATE_BOX = (0.27, 2.50, 0.0)  # pupils and lip outline, 102 London templates
DETECTOR_BOX = (0.244, 0.349, 2.241)  # BlazeFace eyes and mouth centre, 204 London photos (Haar with its fallback)


def box_from_eyes_mouth(left_eye, right_eye, mouth, fit: tuple[float, float, float] = TEMPLATE_BOX) -> np.ndarray:
    along, per_down, per_eyes = fit
    left_eye, right_eye = np.asarray(left_eye, np.float64), np.asarray(right_eye, np.float64)
    eyes = (left_eye + right_eye) / 2
    down = np.asarray(mouth, np.float64) - eyes
    centre = eyes + along * down
    side = per_down * np.hypot(*down) + per_eyes * np.hypot(*(right_eye - left_eye))
    return np.array([centre[0], centre[1], side], dtype=np.float32)


def landmarks_face(points: np.ndarray) -> np.ndarray:
    """A FACE_DIM row from the 68 iBUG landmarks CK+ ships: eyes are the means of 36-41 (the
    person's right eye, the image's left) and 42-47, the mouth the mean of 48-67, the nose tip
    30, the ears the jaw line's ends (0, 16) - the canonical points BlazeFace gives."""
    p = np.asarray(points, dtype=np.float64)
    six = np.stack([p[36:42].mean(0), p[42:48].mean(0), p[30], p[48:68].mean(0), p[0], p[16]])
    box = box_from_eyes_mouth(six[0], six[1], six[3], TEMPLATE_BOX)
    return np.concatenate([box, six.reshape(-1)]).astype(np.float32)


def landmarks_box(points: np.ndarray) -> np.ndarray:
    """The detector's box from CK+'s 68 landmarks."""
    return landmarks_face(points)[:3]


def full_frame_box(shape) -> np.ndarray:
    """When no face can be found: the whole frame (already a face crop, as some CK+ copies are)."""
    h, w = shape[:2]
    return np.array([w / 2, h / 2, min(h, w) / CropConfig.scale], dtype=np.float32)


def full_frame_face(shape, crop: CropConfig) -> np.ndarray:
    """full_frame_box as a FACE_DIM row, its eyes where an aligned crop of the frame puts them."""
    h, w = shape[:2]
    side = min(h, w)
    half = crop.eye_distance * side / 2
    y = h / 2 + (crop.eye_height - 0.5) * side
    points = np.full((6, 2), np.nan, np.float32)
    points[0], points[1] = (w / 2 - half, y), (w / 2 + half, y)
    return np.concatenate([full_frame_box(shape), points.reshape(-1)]).astype(np.float32)


def mean_box(boxes: np.ndarray) -> np.ndarray:
    """Mean of the valid rows (first value not NaN) of (n, D) boxes or faces; NaN when there are none."""
    boxes = np.asarray(boxes, dtype=np.float32)
    valid = boxes[~np.isnan(boxes[:, 0])]
    return valid.mean(axis=0) if len(valid) else np.full(boxes.shape[1], np.nan, dtype=np.float32)


def smooth_boxes(boxes: np.ndarray, radius: int) -> np.ndarray:
    """Centred moving average of (N, D) boxes or faces (D = 3, or FACE_DIM: landmarks are
    smoothed with their box) over +-radius frames; NaN rows are missing detections and are
    skipped. A frame with no detection within its window stays NaN."""
    boxes = np.asarray(boxes, dtype=np.float32)
    boxes = boxes.reshape(len(boxes), -1) if boxes.ndim > 1 else boxes.reshape(-1, 3)
    return (
        np.stack([mean_box(boxes[max(0, i - radius) : i + radius + 1]) for i in range(len(boxes))])
        if len(boxes)
        else boxes
    )


def fill_missing(boxes: np.ndarray) -> np.ndarray:
    """Missing boxes (NaN rows) take the nearest frame's box. For training sequences, which
    are known to show a face throughout; the service marks such frames instead."""
    boxes = np.array(boxes, dtype=np.float32)
    valid = np.flatnonzero(~np.isnan(boxes[:, 0]))
    if len(valid) == 0 or len(valid) == len(boxes):
        return boxes
    nearest = valid[np.abs(np.arange(len(boxes))[:, None] - valid[None, :]).argmin(axis=1)]
    return boxes[nearest]


def crop_face(gray: np.ndarray, box: np.ndarray, size: int, scale: float) -> np.ndarray:
    """Square (size, size) uint8 crop of side scale*box_side around the box centre; parts
    outside the frame repeat the border (a face at the edge keeps its framing)."""
    cx, cy, side = (float(v) for v in box)
    half = max(side * scale / 2, 1.0)
    x0, y0 = int(round(cx - half)), int(round(cy - half))
    x1, y1 = int(round(cx + half)), int(round(cy + half))
    h, w = gray.shape[:2]
    pad = max(0, -x0, -y0, x1 - w, y1 - h)
    if pad:
        gray = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0, x1, y1 = x0 + pad, y0 + pad, x1 + pad, y1 + pad
    region = gray[y0:y1, x0:x1]
    interp = cv2.INTER_AREA if region.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(region, (size, size), interpolation=interp)


def align_face(gray: np.ndarray, points: np.ndarray, crop: CropConfig, size: int | None = None) -> np.ndarray:
    """(size, size) uint8 crop with the eyes level, crop.eye_distance * size apart, their
    midpoint at (size / 2, crop.eye_height * size): one similarity transform from the two eye
    points (points (6, 2) or (>=2, 2): the person's right eye, then left). Outside the frame
    repeats the border, as crop_face does."""
    size = size or crop.size
    right, left = np.asarray(points[0], np.float64), np.asarray(points[1], np.float64)
    d = left - right  # the image-left eye to the image-right eye
    k = crop.eye_distance * size / max(np.hypot(*d), 1e-6)  # output pixels per frame pixel
    # Shrinking by more than 2x: INTER_AREA first (warpAffine has no area filter), the rest in the warp.
    if k < 0.5:
        f = 2 * k
        gray = cv2.resize(gray, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        right, left, k = right * f, left * f, k / f
    mid = (right + left) / 2
    m = cv2.getRotationMatrix2D((float(mid[0]), float(mid[1])), float(np.degrees(np.arctan2(d[1], d[0]))), float(k))
    m[:, 2] += np.array([size / 2, crop.eye_height * size]) - mid
    return cv2.warpAffine(gray, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def crop_frame(gray: np.ndarray, face: np.ndarray, crop: CropConfig, size: int | None = None) -> np.ndarray:
    """The crop the network sees, of a FACE_DIM row (or a bare box when not aligning): aligned
    on the eyes when crop.align, else the box's square. size: another output side (display crops)."""
    face = np.asarray(face, np.float32)
    if crop.align and len(face) >= 7 and not np.isnan(face[3:7]).any():
        return align_face(gray, face[3:].reshape(-1, 2), crop, size)
    return crop_face(gray, face[:3], size or crop.size, crop.scale)
