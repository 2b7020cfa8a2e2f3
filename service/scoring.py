"""One person's clips through the network as they arrive: features shared by overlapping clips,
batches scored together, and the clip that showed each class most kept for its pictures."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from service.predictor import Predictor
from service.stopwatch import Stopwatch


@dataclass
class PendingClip:
    number: int
    frames: np.ndarray  # (T,) frame indices
    displays: list  # T display crops (D, D)


@dataclass
class ClipScorer:
    """Scores one person's clips in batches as they arrive and remembers, for each class, the
    clip that showed it most strongly, with what is needed to draw that clip's attention maps.

    A frame's features (the network's per-frame part) are computed once and shared by the up
    to 4 overlapping clips it belongs to; they are dropped when no later clip can need them."""

    predictor: Predictor
    watch: Stopwatch
    crops: dict  # the person's 48 px crops, by frame index
    probs: dict[int, np.ndarray] = field(default_factory=dict)  # the network's, which the decision reads
    reported: dict[int, np.ndarray] = field(default_factory=dict)  # the same at the checkpoint's temperature
    best: dict[int, tuple[float, int, list, np.ndarray | None]] = field(default_factory=dict)
    pending: list[PendingClip] = field(default_factory=list)
    feats: dict = field(default_factory=dict)  # frame index -> features tensor (P, h, w)
    # When a list: each scored clip is appended as (number, frame indices, probabilities, reported, maps or None),
    # for a live session to send on; uploads leave it None and keep only the summaries above.
    scored: list | None = None

    def add(self, clip: PendingClip) -> None:
        self.pending.append(clip)
        if len(self.pending) >= self.predictor.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        with self.watch.stage("infer"):
            needed = sorted({int(i) for c in self.pending for i in c.frames} - self.feats.keys())
            for b in range(0, len(needed), 4 * self.predictor.batch_size):
                chunk = needed[b : b + 4 * self.predictor.batch_size]
                for i, f in zip(chunk, self.predictor.features(np.stack([self.crops[i] for i in chunk]))):
                    self.feats[i] = f
            stacked = self.predictor.torch.stack(
                [self.predictor.torch.stack([self.feats[int(i)] for i in c.frames]) for c in self.pending]
            )
            probs, maps = self.predictor.score(stacked)
        shown = self.predictor.calibrated(probs)  # the peak is the clip whose reported probability is highest
        for j, clip in enumerate(self.pending):
            self.probs[clip.number] = probs[j]
            self.reported[clip.number] = shown[j]
            if self.scored is not None:
                self.scored.append((clip.number, clip.frames, probs[j], shown[j], None if maps is None else maps[j]))
            for k in range(probs.shape[1]):
                if k not in self.best or shown[j, k] > self.best[k][0]:
                    self.best[k] = (float(shown[j, k]), clip.number, clip.displays, None if maps is None else maps[j])
        # later clips start after the last one scored (the end-aligned clip at most 1 frame after)
        keep_from = int(self.pending[-1].frames[0]) + 1
        self.feats = {i: f for i, f in self.feats.items() if i >= keep_from}
        self.pending = []
