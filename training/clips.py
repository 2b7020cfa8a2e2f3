"""Clip splitting and the majority vote: the paper's protocol (section 4.1), shared by training and serving.

A video is cut into 8-frame clips, consecutive clips overlapping by 6 frames (stride 2); every clip
is classified and the video's label is the majority vote of its clips.
"""

from __future__ import annotations

import numpy as np

CLIP_LENGTH = 8
CLIP_STRIDE = 2


def clip_indices(n_frames: int, length: int = CLIP_LENGTH, stride: int = CLIP_STRIDE) -> np.ndarray:
    """Frame indices of every clip of an n-frame video, shape (n_clips, length).

    * Clips start at 0, stride, 2*stride, ... while they fit.
    * If that leaves the last frame(s) out, one more clip ends exactly on the last frame: CK+
      sequences end on the expression's peak, and no frame of any video should go unseen.
    * A video shorter than `length` becomes one clip whose first frame is repeated in front
      ([0, 0, 0, 0, 0, 0, 1, 2] for 3 frames): the face held still before the recording began,
      which keeps the real frames at the end, where the network makes its decision.
    * No frames, no clips.
    """
    if n_frames <= 0:
        return np.zeros((0, length), dtype=np.int64)
    if n_frames < length:
        return np.concatenate([np.zeros(length - n_frames, np.int64), np.arange(n_frames)])[None]
    starts = list(range(0, n_frames - length + 1, stride))
    if starts[-1] + length < n_frames:
        starts.append(n_frames - length)
    return np.asarray(starts, dtype=np.int64)[:, None] + np.arange(length)


def regular_clip(number: int, length: int = CLIP_LENGTH, stride: int = CLIP_STRIDE) -> np.ndarray:
    """Frame indices of clip `number` counted from the start: a row of clip_indices other than the
    end-aligned last one, known as soon as its frames exist (a stream's clips, before its end)."""
    return np.arange(number * stride, number * stride + length)


def majority_vote(
    labels, probabilities=None, num_classes: int | None = None, abstain: int | None = None, min_run: int = 1
) -> tuple[int, np.ndarray]:
    """The video's label from its clips' labels. Returns (winner, votes per class).

    Tie rule: among the classes with the most votes, the one with the larger summed probability
    over the voting clips wins (the model was more sure of it); if still tied, the lower class
    index. `abstain` (e.g. a "neutral" class) votes only when no clip voted for anything else, so
    a short expression inside a calm video is not outvoted by the calm.
    `min_run` (with `abstain`): an expression outvotes the calm only where it holds for at least
    that many consecutive clips; a shorter run (one clip where a still face starts to move) is
    not held against the calm. With no such run, every clip votes. 1 is the rule above.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size == 0:
        raise ValueError("majority_vote needs at least one clip")
    if num_classes is None:
        num_classes = int(labels.max()) + 1 if probabilities is None else np.shape(probabilities)[1]
    votes = np.bincount(labels, minlength=num_classes)  # every clip is counted and reported ...
    voters = np.ones(labels.shape, dtype=bool)
    if abstain is not None:
        expressive = labels != abstain
        for _, first, last in label_runs(labels.tolist()):
            if last - first + 1 < min_run:
                expressive[first : last + 1] = False
        if expressive.any():
            voters = expressive  # ... but an abstaining class only contests when it is alone
    contest = np.bincount(labels[voters], minlength=num_classes)
    tied = np.flatnonzero(contest == contest.max())
    if len(tied) > 1 and probabilities is not None:
        mass = np.asarray(probabilities)[voters][:, tied].sum(axis=0)
        tied = tied[mass == mass.max()]
    return int(tied[0]), votes


def label_runs(labels) -> list[tuple[object, int, int]]:
    """Consecutive clips with the same label, as (label, first clip, last clip): the timeline a
    person reads ("neutral, then happy from 1.1 s"). Labels may be None (a clip without a face)."""
    runs: list[tuple[object, int, int]] = []
    for i, label in enumerate(labels):
        if runs and runs[-1][0] == label:
            runs[-1] = (label, runs[-1][1], i)
        else:
            runs.append((label, i, i))
    return runs


def smooth_probabilities(probabilities, radius: int) -> np.ndarray:
    """Each clip's class probabilities averaged with its neighbours' within +-radius clips (fewer at
    the ends): evidence over time, so one clip where the mouth happens to open cannot flip the label.
    radius 0 returns them as they are."""
    p = np.asarray(probabilities, dtype=np.float64)
    if radius <= 0 or len(p) < 2:
        return p
    csum = np.vstack([np.zeros((1, p.shape[1])), np.cumsum(p, axis=0)])
    idx = np.arange(len(p))
    lo, hi = np.clip(idx - radius, 0, len(p)), np.clip(idx + radius + 1, 0, len(p))
    return (csum[hi] - csum[lo]) / (hi - lo)[:, None]


def merge_short_runs(labels, min_run: int) -> list:
    """Runs of fewer than min_run clips take the label of the longer neighbouring run (the earlier
    one on a tie), shortest first, until every run is at least min_run long or only one is left:
    a timeline a person can read, without one-clip blips. None (no face) is never merged."""
    labels = list(labels)
    if min_run <= 1:
        return labels
    while True:
        runs = label_runs(labels)
        short = [
            (last - first + 1, k)
            for k, (label, first, last) in enumerate(runs)
            if label is not None and last - first + 1 < min_run
        ]
        if not short or len(runs) == 1:
            return labels
        _, k = min(short)
        _label, first, last = runs[k]
        neighbours = [runs[j] for j in (k - 1, k + 1) if 0 <= j < len(runs) and runs[j][0] is not None]
        if not neighbours:
            return labels
        winner = max(neighbours, key=lambda r: r[2] - r[1])[0]
        labels[first : last + 1] = [winner] * (last - first + 1)


def shift_prior(probabilities, index: int, log_bias: float) -> np.ndarray:
    """Clips' class probabilities (N, K) under another prior for one class: its probability times
    exp(log_bias), then each row renormalised (Bayes' rule for a class that is exp(log_bias) times
    as common, against the others, as in the training data). 0 returns them as they are."""
    p = np.asarray(probabilities, dtype=np.float64)
    if not log_bias:
        return p
    p = p.copy()
    p[:, index] *= np.exp(log_bias)
    return p / p.sum(axis=1, keepdims=True)


def decide_video(
    probabilities,
    num_classes: int | None = None,
    abstain: int | None = None,
    radius: int = 0,
    min_run: int = 1,
    abstain_bias: float = 0.0,
) -> tuple[int, np.ndarray, np.ndarray]:
    """The service's answer for a video from its clips' probabilities (N, K): the clips' labels after
    `abstain_bias` (with `abstain`: `shift_prior` of that class), smoothing (`smooth_probabilities`
    over +-radius clips) and the majority vote of those labels (`majority_vote`, with `abstain` and
    `min_run`). Returns (winner, votes, per-clip labels).
    radius 0 and no bias is the paper's vote of the clips as they are (what `training cv` reports)."""
    if abstain is not None:
        probabilities = shift_prior(probabilities, abstain, abstain_bias)
    smoothed = smooth_probabilities(probabilities, radius)
    labels = smoothed.argmax(1)
    winner, votes = majority_vote(labels, smoothed, num_classes or smoothed.shape[1], abstain=abstain, min_run=min_run)
    return winner, votes, labels
