"""Attention maps drawn over faces (OpenCV only, so the service can draw without matplotlib).

RAM's map has one value in (0, 1) per feature-map cell (6x6 for a 48 px crop); it is upsampled
smoothly to the face crop and blended as a heat map: red where the model looked, blue where not.
Like the paper's Fig. 4, the colour scale is absolute (0..1), not stretched per image, so two
maps can be compared by eye.
"""

from __future__ import annotations

import cv2
import numpy as np


def heat_overlay(
    face_gray: np.ndarray, attention: np.ndarray, size: int | None = None, alpha: float = 0.45
) -> np.ndarray:
    """BGR uint8 (size, size, 3): the face in gray under a JET heat map of the attention."""
    size = size or face_gray.shape[0]
    face = (
        face_gray if face_gray.shape[0] == size else cv2.resize(face_gray, (size, size), interpolation=cv2.INTER_CUBIC)
    )
    heat = cv2.resize(np.asarray(attention, np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    heat = cv2.applyColorMap(np.clip(heat * 255, 0, 255).astype(np.uint8), cv2.COLORMAP_JET)
    return cv2.addWeighted(cv2.cvtColor(face, cv2.COLOR_GRAY2BGR), 1 - alpha, heat, alpha, 0)


def evidence_overlay(face_gray: np.ndarray, evidence: np.ndarray, size: int | None = None) -> np.ndarray:
    """The answer's evidence per cell (ExpressionNet.evidence) over the face: its positive part as a share of
    its strongest cell (red: the region that gave the answer most), not on RAM's absolute scale."""
    positive = np.clip(evidence, 0, None)
    return heat_overlay(face_gray, positive / max(float(positive.max()), 1e-9), size)


def strip(images: list[np.ndarray], gap: int = 4) -> np.ndarray:
    """Images of equal height side by side, with a white gap between them."""
    h = images[0].shape[0]
    sep = np.full((h, gap, 3), 255, np.uint8)
    parts = []
    for im in images:
        parts += [im if im.ndim == 3 else cv2.cvtColor(im, cv2.COLOR_GRAY2BGR), sep]
    return np.hstack(parts[:-1])
