"""The model files the package carries, as package data under training/models/ (a few MB, in the
wheel and in every install): found beside this file, wherever the package is installed, never
relative to the working directory.

    training/models/default/            the served checkpoint (the service's default RAMFER_MODEL_DIR, a bare --init's)
    training/models/synthetic/          the 8-class checkpoint trained on rendered faces only (no web photos)
    training/models/synthetic-7class/   the 7-class checkpoint trained on drawn faces only
    training/models/face-detector/      BlazeFace's weights, with their LICENSE, NOTICE and README

Importing this module imports nothing else (no torch): the API and `serve` find the files without it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

MODELS = Path(__file__).resolve().parent / "models"
SERVED_CHECKPOINT = MODELS / "default"
SYNTHETIC_8CLASS = MODELS / "synthetic"
SYNTHETIC_7CLASS = MODELS / "synthetic-7class"
# The checkpoints RAMFER_MODEL_DIR and --model may name instead of giving a folder
BUNDLED_CHECKPOINTS = {
    "default": SERVED_CHECKPOINT,
    "synthetic": SYNTHETIC_8CLASS,
    "synthetic-7class": SYNTHETIC_7CLASS,
}
DETECTOR_WEIGHTS = MODELS / "face-detector" / "blazeface_full_range.safetensors"


def default_cache_dir() -> Path:
    """Where preprocessed training arrays and the CPU runtime's exports are kept: $RAMFER_CACHE, else ~/.cache/ramfer."""
    return Path(os.environ.get("RAMFER_CACHE") or Path.home() / ".cache" / "ramfer")


def sha256_of(path: Path) -> str:
    """A file's sha256, read a MiB at a time: how a checkpoint names its weights (and an export its sources)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def checkpoint_folder(name_or_path) -> Path:
    """The folder of a checkpoint given as a path, or as the name of one the package carries
    (BUNDLED_CHECKPOINTS: `RAMFER_MODEL_DIR=synthetic`, `--model synthetic`); a folder of that name in the
    working directory is taken over the bundled one."""
    path = Path(name_or_path)
    if not path.exists() and str(name_or_path) in BUNDLED_CHECKPOINTS:
        return BUNDLED_CHECKPOINTS[str(name_or_path)]
    return path


class DetectorError(Exception):
    """The face detector's weights cannot be loaded (a broken install): `problem` in a line, about
    the file `path`."""

    def __init__(self, problem: str, path):
        self.problem = " ".join(str(problem).split())
        self.path = Path(path)
        super().__init__(f"the face detector's weights {self.path}: {self.problem}")
