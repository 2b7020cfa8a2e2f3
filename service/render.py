"""The attention-map PNGs a result links to: where the model looked, drawn over the face."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from training.visualize import heat_overlay, strip

PEAK_SIZE = 256


def render_attention(out_dir: Path, faces: np.ndarray, maps: np.ndarray, frames: list[int], times: list[float]) -> list[dict]:
    """Two images of the peak clip: `peak` (its last frame, where the network decides, large)
    and `peak_clip` (all its frames left to right, each with its own step's map).

    faces: (T, D, D) uint8 display crops; maps: (T, h, w) RAM maps in (0, 1).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    overlays = [heat_overlay(face, m) for face, m in zip(faces, maps)]
    _write_png(out_dir / "peak.png", heat_overlay(faces[-1], maps[-1], PEAK_SIZE))
    _write_png(out_dir / "peak_clip.png", strip(overlays))
    return [
        {"name": "peak", "frame": frames[-1], "time_s": round(times[-1], 3)},
        {"name": "peak_clip", "frame": frames[0], "time_s": round(times[0], 3), "frames": frames},
    ]


def _write_png(path: Path, image: np.ndarray) -> None:
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise RuntimeError(f"PNG encoding failed for {path.name}")
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data.tobytes())
    tmp.replace(path)  # readers never see half an image
