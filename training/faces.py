"""Where the face is in each frame, and the crop the network sees. One implementation for
training and serving, so the served model gets exactly the kind of input it learned from.

    frame -> face box (Haar detector, or CK+ landmarks) -> boxes smoothed over time -> square gray crop

A box is (cx, cy, side): a square in frame pixels, the size and place of a Haar frontal-face
detection. CK+ landmarks are turned into the box the detector would have drawn (a fit on real
faces, see `landmarks_box`), so a model trained on landmark crops sees the same framing when
it is served behind the detector.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from training.video import Frame


@dataclass(frozen=True)
class CropConfig:
    size: int = 48  # side of the crop given to the network (the model's input_size)
    scale: float = 1.2  # crop side / detector box side: forehead to chin, as common FER crops
    smooth_radius: int = 3  # a box is the mean of the detections within +-radius frames
    detect_max_side: int = 320  # frames are downscaled to this before detection (speed)

    def to_dict(self) -> dict:
        return asdict(self)


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


# A second cascade, tried only on frames where the default one finds nothing. OpenCV's "alt"
# cascade finds faces the default misses (on the London set's 204 photos and their H.264
# frames, the default misses 3 of 408 images, all of one darker-skinned man against the
# studio's bright background; the alt cascade finds all 408), finds none in the scikit-image
# sample pictures without faces (the default finds two), and draws a box of nearly the same
# place and size (benchmarks/detector_coverage.py). Its boxes are mapped onto the default's
# (fitted by benchmarks/calibrate_face_box.py on the faces both find), so the crop frames a face
# as the model learned it; frames the default detects are untouched.
FALLBACK_CASCADE = "haarcascade_frontalface_alt.xml"
FALLBACK_SIDE_TO_DEFAULT = 1.025  # default side / alt side (median over 203 London photos)
FALLBACK_DY_TO_DEFAULT = 0.004  # (default cy - alt cy) / default side (median)


def fallback_to_default(box: np.ndarray) -> np.ndarray:
    """The box the default cascade would have drawn, from the fallback cascade's."""
    cx, cy, side = box
    side = side * FALLBACK_SIDE_TO_DEFAULT
    return np.array([cx, cy + FALLBACK_DY_TO_DEFAULT * side, side], dtype=np.asarray(box).dtype)


def load_cascade(name: str) -> cv2.CascadeClassifier:
    path = cv2.data.haarcascades + name
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise RuntimeError(f"cannot load the Haar cascade {path} (opencv-python-headless<5 ships it)")
    return cascade


class FaceDetector:
    """OpenCV's Haar frontal-face cascade (then the alt cascade, where it finds nothing); the
    largest face of a frame, or None."""

    def __init__(self, max_side: int = 320, fallback: bool = True):
        self.cascade = load_cascade("haarcascade_frontalface_default.xml")
        self.fallback = load_cascade(FALLBACK_CASCADE) if fallback else None
        self.max_side = max_side

    def __call__(self, gray: np.ndarray) -> np.ndarray | None:
        small, scale = self.detection_frame(gray)
        box = largest_face(self.cascade, small)
        if box is None and self.fallback is not None:
            box = largest_face(self.fallback, small)
            box = None if box is None else fallback_to_default(box)
        return None if box is None else (box / scale).astype(np.float32)

    def detect(self, cascade: cv2.CascadeClassifier, gray: np.ndarray) -> np.ndarray | None:
        """One cascade's largest face as (cx, cy, side) in gray's pixels, or None (for calibration)."""
        small, scale = self.detection_frame(gray)
        box = largest_face(cascade, small)
        return None if box is None else (box / scale).astype(np.float32)

    def detection_frame(self, gray: np.ndarray) -> tuple[np.ndarray, float]:
        """The frame the cascades search, and its scale from the original."""
        h, w = gray.shape
        # Downscale big frames (detection cost grows with pixels); upscale tiny ones (the
        # cascade's window is 24 px, and a pre-cropped 48 px face must still be found).
        scale = self.max_side / max(h, w) if max(h, w) > self.max_side else max(1.0, 96 / min(h, w))
        if scale == 1.0:
            return gray, scale
        return cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR), scale


def largest_face(cascade: cv2.CascadeClassifier, small: np.ndarray) -> np.ndarray | None:
    """(cx, cy, side) of the cascade's largest detection, in small's pixels, or None."""
    min_face = max(24, int(min(small.shape) * 0.12))
    faces = cascade.detectMultiScale(small, scaleFactor=1.1, minNeighbors=5, minSize=(min_face, min_face))
    if len(faces) == 0:
        return None
    x, y, fw, fh = max(faces, key=lambda f: f[2] * f[3])
    return np.array([x + fw / 2, y + fh / 2, (fw + fh) / 2], dtype=np.float64)


# The detector's box from facial points: centre = eye midpoint + A * (mouth - eye midpoint),
# side = B * |mouth - eye midpoint|. A and B were fitted on real faces (the London set: Haar
# boxes against the templates' eye and mouth points), by benchmarks/calibrate_face_box.py.
BOX_CENTRE_ALONG_EYES_TO_MOUTH = 0.27
BOX_SIDE_PER_EYES_TO_MOUTH = 2.50


def box_from_eyes_mouth(left_eye, right_eye, mouth) -> np.ndarray:
    eyes = (np.asarray(left_eye, np.float64) + np.asarray(right_eye, np.float64)) / 2
    down = np.asarray(mouth, np.float64) - eyes
    centre = eyes + BOX_CENTRE_ALONG_EYES_TO_MOUTH * down
    return np.array([centre[0], centre[1], BOX_SIDE_PER_EYES_TO_MOUTH * np.hypot(*down)], dtype=np.float32)


def landmarks_box(points: np.ndarray) -> np.ndarray:
    """The detector's box from the 68 iBUG landmarks CK+ ships (eyes 36-41 / 42-47, mouth 48-67)."""
    p = np.asarray(points, dtype=np.float64)
    return box_from_eyes_mouth(p[36:42].mean(0), p[42:48].mean(0), p[48:68].mean(0))


def full_frame_box(shape) -> np.ndarray:
    """When no face can be found: the whole frame (already a face crop, as some CK+ copies are)."""
    h, w = shape[:2]
    return np.array([w / 2, h / 2, min(h, w) / CropConfig.scale], dtype=np.float32)


def mean_box(boxes: np.ndarray) -> np.ndarray:
    """Mean of the valid (non-NaN) rows of (n, 3) boxes; NaN when there are none."""
    boxes = np.asarray(boxes, dtype=np.float32)
    valid = boxes[~np.isnan(boxes[:, 0])]
    return valid.mean(axis=0) if len(valid) else np.full(3, np.nan, dtype=np.float32)


def smooth_boxes(boxes: np.ndarray, radius: int) -> np.ndarray:
    """Centred moving average of (N, 3) boxes over +-radius frames; NaN rows are missing
    detections and are skipped. A frame with no detection within its window stays NaN."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 3)
    return np.stack([mean_box(boxes[max(0, i - radius) : i + radius + 1]) for i in range(len(boxes))]) if len(boxes) else boxes


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


@dataclass(frozen=True)
class TrackedFrame:
    index: int
    time_s: float
    gray: np.ndarray  # the full frame
    box: np.ndarray | None  # smoothed face box, None where no face was seen within the window


def track_faces(
    frames: Iterable[Frame], detector: FaceDetector, radius: int, detect_every: int = 1
) -> Iterator[TrackedFrame]:
    """Frames with their smoothed face boxes, streamed with a lag of `radius` frames.

    Each frame's box is `smooth_boxes` over the detections within +-radius frames, the same
    numbers the offline function gives for the whole video; only 2*radius+1 frames are held.
    With detect_every = k > 1 the detector runs on every k-th frame only (radius >= k keeps
    every frame within reach of a detection).
    """
    pending: deque[Frame] = deque()  # frames waiting for the detections after them
    window: deque[tuple[int, np.ndarray]] = deque(maxlen=2 * radius + 1)  # (index, raw box or NaN)
    nan = np.full(3, np.nan, dtype=np.float32)

    def emit(frame: Frame) -> TrackedFrame:
        box = mean_box(np.stack([b for i, b in window if abs(i - frame.index) <= radius]))
        return TrackedFrame(frame.index, frame.time_s, frame.gray, None if np.isnan(box[0]) else box)

    for frame in frames:
        raw = detector(frame.gray) if frame.index % detect_every == 0 else None
        window.append((frame.index, nan if raw is None else raw))
        pending.append(frame)
        if frame.index - pending[0].index >= radius:  # its last detection in reach has arrived
            yield emit(pending.popleft())
    while pending:
        yield emit(pending.popleft())
