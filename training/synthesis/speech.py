"""Speech's mouth shapes on both renderers' points: how one frame of training.synthesis.motion's
speech tracks (jaw opening, lips spread or rounded, lips pressed) moves the lips and the jaw.

The shapes are written as FACS table entries (training.synthesis.facs) and added on top of the
expression, so a face can talk while it holds one: the drawn faces reuse AU26's jaw drop, AU25's
parting lips, AU20's stretch and AU23's press, with a rounding of their own; the London template has
its own spread, round and press shapes and the jaw row of PHOTOREAL_AU.
"""

from __future__ import annotations

import numpy as np

from training.synthesis.facs import PHOTOREAL_AU, SIDE, drawn_au_disp, photoreal_au_disp
from training.synthesis.identity import Identity

# Speech mouth shapes on the 68 points, as DRAWN_AU entries (face units at full strength). The jaw reuses
# AU26's pattern (lower lip, chin and jaw down) and the parting lips AU25's.
DRAWN_SPEECH = {
    "round": [
        ((48, 54), -0.022, 0),
        ((60, 64), -0.02, 0),
        ((49, 53), -0.01, -0.004),
        ((59, 55), -0.01, 0.004),
        ((50, 51, 52), 0, -0.005),
        ((56, 57, 58), 0, 0.005),
    ],
}
DRAWN_JAW_SPEECH = 0.75  # AU26 at jaw = 1: a wide "ah" drops the chin ~0.045 face units (~0.14 inter-eye distances)


def drawn_speech_disp(jaw: float, spread: float, press: float) -> np.ndarray:
    """(68, 2) face units: the mouth shape of one speech frame (motion.speech's units)."""
    d = jaw * DRAWN_JAW_SPEECH * drawn_au_disp("AU26") + min(1.0, 3 * jaw) * (1 - press) * 0.6 * drawn_au_disp("AU25")
    d += max(spread, 0.0) * 0.55 * drawn_au_disp("AU20")
    if spread < 0:
        for idx, dx, dy in DRAWN_SPEECH["round"]:
            idx = list(idx)
            d[idx, 0] += -spread * SIDE[idx] * dx
            d[idx, 1] += -spread * dy
    return d + press * 0.5 * drawn_au_disp("AU23")


# Speech mouth shapes on the template, {left or midline point: (outward, down)} in inter-pupil
# distances at full strength, as PHOTOREAL_AU. The jaw itself reuses PHOTOREAL_AU["jaw"] (lower lip, chin and jaw down).
PHOTOREAL_SPEECH = {
    # lips spread ("ee"): corners out, lips thinned a little
    "spread": {
        87: (0.06, -0.005),
        94: (0.05, 0),
        99: (0.05, 0),
        88: (0.03, 0.003),
        104: (0.03, -0.003),
        89: (0.01, 0.004),
        105: (0.01, -0.004),
        95: (0.02, 0),
        100: (0.02, 0),
        160: (0.015, 0),
    },
    # lips rounded ("oo"): corners in, lips pushed out (taller in the picture)
    "round": {
        87: (-0.07, 0.0),
        94: (-0.055, 0),
        99: (-0.055, 0),
        88: (-0.035, -0.012),
        104: (-0.035, 0.012),
        89: (-0.012, -0.015),
        105: (-0.012, 0.015),
        95: (-0.02, 0),
        100: (-0.02, 0),
        90: (0, -0.015),
        106: (0, 0.015),
    },
    # lips pressed (m, b, p): the red of the lips narrowed
    "press": {88: (0, 0.012), 89: (0, 0.015), 90: (0, 0.015), 104: (0, -0.015), 105: (0, -0.018), 106: (0, -0.018)},
}
PHOTOREAL_JAW_SPEECH = 0.14  # inter-pupil distances of chin drop at jaw = 1 (a wide "ah"; AU26 is 0.15, AU27 0.32)


def photoreal_speech_disp(ident: Identity, jaw: float, spread: float, press: float) -> np.ndarray:
    """(189, 2) pixels: the mouth shape of one speech frame (motion.speech's units)."""
    d = jaw * PHOTOREAL_JAW_SPEECH * photoreal_au_disp(ident, PHOTOREAL_AU["jaw"])
    d += (
        min(1.0, 3 * jaw) * (1 - press) * 0.6 * photoreal_au_disp(ident, PHOTOREAL_AU["25"])
    )  # the lips part as the jaw opens
    d += max(spread, 0.0) * photoreal_au_disp(ident, PHOTOREAL_SPEECH["spread"]) + max(
        -spread, 0.0
    ) * photoreal_au_disp(ident, PHOTOREAL_SPEECH["round"])
    return d + press * photoreal_au_disp(ident, PHOTOREAL_SPEECH["press"])
