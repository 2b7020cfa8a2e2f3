"""The Haar-cascade face detector ramfer used until issue 19 (training/faces.py now runs
BlazeFace, training/detector.py): kept as the baseline the benchmarks measure against, and as
the detector today's served checkpoint's crops were made with.

Needs OpenCV's Haar cascades, which opencv-python(-headless) < 5 ships (5.x dropped
CascadeClassifier): `HAAR_AVAILABLE` says whether this OpenCV has them, and the benchmarks skip
the baseline where it has not.
"""

from __future__ import annotations

import cv2
import numpy as np

HAAR_AVAILABLE = hasattr(cv2, "CascadeClassifier") and hasattr(cv2, "data") and hasattr(cv2.data, "haarcascades")


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


class HaarDetector:
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
