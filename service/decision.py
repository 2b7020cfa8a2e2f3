"""The service's decision rule: from clips' probabilities to a person's answer, the same for uploads
and live sessions (training.clips.decide_video with the service's settings, neutral abstaining)."""

from __future__ import annotations

import numpy as np

from service.predictor import Predictor
from service.settings import Settings
from training.clips import decide_video


def neutral_class(classes: list[str]) -> int | None:
    """The class that abstains in the vote (training.clips.majority_vote): neutral, where the model has it."""
    return classes.index("neutral") if "neutral" in classes else None


def neutral_bias(predictor: Predictor, settings: Settings) -> float:
    """The prior for neutral the decision uses: RAMFER_NEUTRAL_BIAS where it is set, else the checkpoint's own
    (0 for a model without a neutral class)."""
    if neutral_class(predictor.classes) is None:
        return 0.0
    return predictor.neutral_bias if settings.neutral_bias is None else settings.neutral_bias


def decide_clips(
    probabilities: np.ndarray, predictor: Predictor, settings: Settings
) -> tuple[int, np.ndarray, np.ndarray, float]:
    """The service's decision rule on clips' network probabilities (N, K), for uploads and live
    sessions alike: training.clips.decide_video with the service's settings, neutral abstaining.
    Returns the winner, the votes, each clip's decided label and the confidence: the winner's share
    of the clips that voted (neutral clips stand aside when an expression wins)."""
    classes = predictor.classes
    neutral = neutral_class(classes)
    winner, votes, labels = decide_video(
        probabilities,
        len(classes),
        abstain=neutral,
        radius=settings.vote_smooth_clips,
        min_run=settings.vote_min_clips,
        abstain_bias=neutral_bias(predictor, settings),
    )
    voting = int(votes.sum() if neutral is None or winner == neutral else votes.sum() - votes[neutral])
    return winner, votes, labels, round(float(votes[winner] / max(voting, 1)), 4)
