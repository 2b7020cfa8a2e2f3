"""The model files the package carries, as package data under training/models/ (a few MB, in the
wheel and in every install): found beside this file, wherever the package is installed, never
relative to the working directory.

    training/models/default/            the served checkpoint (the service's default MODEL_DIR, a bare --init's)
    training/models/synthetic-7class/   the 7-class checkpoint trained on drawn faces only
    training/models/face-detector/      BlazeFace's weights, with their LICENSE, NOTICE and README

Importing this module imports nothing else (no torch): the API and `serve` find the files without it.
"""

from __future__ import annotations

from pathlib import Path

MODELS = Path(__file__).resolve().parent / "models"
SERVED_CHECKPOINT = MODELS / "default"
SYNTHETIC_7CLASS = MODELS / "synthetic-7class"
DETECTOR_WEIGHTS = MODELS / "face-detector" / "blazeface_full_range.safetensors"


class DetectorError(Exception):
    """The face detector's weights cannot be loaded (a broken install): `problem` in a line, about
    the file `path`."""

    def __init__(self, problem: str, path):
        self.problem = " ".join(str(problem).split())
        self.path = Path(path)
        super().__init__(f"the face detector's weights {self.path}: {self.problem}")
