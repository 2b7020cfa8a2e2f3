"""The PNGs a result links to: where the model looked (RAM's attention) and where its answer came from, drawn over the face."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from service.schemas import AttentionMap, Image
from training.visualize import evidence_overlay, heat_overlay, strip

PEAK_SIZE = 256


def render_attention(
    out_dir: Path,
    faces: np.ndarray,
    maps: np.ndarray,
    frames: list[int],
    times: list[float],
    evidence: np.ndarray | None = None,
    prefix: str = "",
) -> list[AttentionMap]:
    """The images of a person's peak clip: `{prefix}peak` (its last frame, where the network
    decides, large, with RAM's map), `{prefix}peak_clip` (all its frames left to right, each with
    its own step's RAM map) and, given the evidence, `{prefix}peak_evidence` (the last frame with
    where the answer came from).

    faces: (T, D, D) uint8 display crops; maps: (T, h, w) RAM maps in (0, 1), drawn on RAM's own
    absolute scale; evidence: (h, w) the answered class's evidence per cell (ExpressionNet.evidence),
    drawn as a share of its strongest cell (red: the cell that gave the answer most; blue: none).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    overlays = [heat_overlay(face, m) for face, m in zip(faces, maps)]
    _write_png(out_dir / f"{prefix}peak.png", heat_overlay(faces[-1], maps[-1], PEAK_SIZE))
    _write_png(out_dir / f"{prefix}peak_clip.png", strip(overlays))
    images = [
        AttentionMap(name=f"{prefix}peak", frame=frames[-1], time_s=round(times[-1], 3)),
        AttentionMap(name=f"{prefix}peak_clip", frame=frames[0], time_s=round(times[0], 3), frames=frames),
    ]
    if evidence is not None:
        _write_png(out_dir / f"{prefix}peak_evidence.png", evidence_overlay(faces[-1], evidence, PEAK_SIZE))
        images.append(AttentionMap(name=f"{prefix}peak_evidence", frame=frames[-1], time_s=round(times[-1], 3)))
    return images


def render_face(out_dir: Path, name: str, face: np.ndarray, frame: int, time_s: float) -> Image:
    """A person's picture: their display crop (D, D) where their face was seen largest."""
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_png(out_dir / f"{name}.png", face)
    return Image(name=name, frame=frame, time_s=round(time_s, 3))


def _write_png(path: Path, image: np.ndarray) -> None:
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise RuntimeError(f"PNG encoding failed for {path.name}")
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data.tobytes())
    tmp.replace(path)  # readers never see half an image
