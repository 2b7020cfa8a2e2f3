"""training.synthesis.motion: speech, head motion, blinks, gaze and expression envelopes over time."""

from __future__ import annotations

import numpy as np
import pytest

from training.synthesis import motion

FPS = 30.0


def local_maxima(x: np.ndarray, above: float) -> int:
    return int(np.sum((x[1:-1] > x[:-2]) & (x[1:-1] >= x[2:]) & (x[1:-1] > above)))


def test_speech_moves_the_jaw_at_speech_rates_with_pauses():
    n = int(12 * FPS)
    for seed in range(5):
        jaw, spread, press = motion.speech(n, FPS, np.random.default_rng(seed), rate=4.5)
        assert jaw.min() >= 0 and jaw.max() <= 1.3 and press.min() >= 0 and press.max() <= 1
        openings = local_maxima(jaw, 0.15) / 12  # syllables (vowels) a second, pauses included
        assert 2.0 <= openings <= 6.0, openings
        closed = jaw < 0.1
        longest = max(len(r) for r in "".join("c" if c else "." for c in closed).split(".")) / FPS
        assert longest >= 0.1, "no pause (or lip closure) in 12 s of talking"
        assert (spread > 0.3).any() and (spread < -0.3).any(), "lips neither spread nor rounded"
        assert (press > 0.5).any(), "the lips never close on m/b/p"


def test_faster_speech_opens_the_mouth_more_often():
    n = int(20 * FPS)
    slow = np.mean([local_maxima(motion.speech(n, FPS, np.random.default_rng(s), rate=3)[0], 0.15) for s in range(4)])
    fast = np.mean([local_maxima(motion.speech(n, FPS, np.random.default_rng(s), rate=6)[0], 0.15) for s in range(4)])
    assert fast > 1.3 * slow


def test_head_turns_stay_within_the_limit_and_move():
    for seed in range(10):
        yaw, pitch, _roll, shift, scale = motion.head(150, FPS, np.random.default_rng(seed), max_turn=20)
        assert np.abs(yaw).max() <= 20 + 1e-9 and np.abs(pitch).max() <= 15
        assert yaw.std() > 0.5 or np.abs(yaw).mean() > 2
        assert shift.shape == (150, 2) and scale[0] == pytest.approx(1.0)


def test_blinks_every_few_seconds_and_brief():
    closed = motion.blinks(int(30 * FPS), FPS, np.random.default_rng(1))
    shut = closed > 0.5
    starts = np.flatnonzero(shut[1:] & ~shut[:-1])
    assert 4 <= len(starts) <= 16  # one every 2-6 s over 30 s
    lengths = [len(r) for r in "".join("x" if s else "." for s in shut).split(".") if r]
    assert max(lengths) <= 0.2 * FPS


@pytest.mark.parametrize("kind", motion.ENVELOPES)
def test_expression_envelopes(kind):
    n = int(4 * FPS)
    x = motion.envelope(n, FPS, np.random.default_rng(3), kind, strength=0.8)
    assert x.min() >= 0 and x.max() <= 1
    if kind == "onset":
        assert x[0] < 0.05 and x[-1] > 0.6
    elif kind == "held":
        assert x.min() > 0.6
    elif kind == "fade":
        assert x[0] > 0.6 and x[-1] < 0.5 * x[0]
    else:  # return: strong, weaker, strong again
        middle = x[n // 4 : 3 * n // 4].min()
        assert x[0] > 0.6 and x[-1] > 0.6 and middle < 0.5 * x[0]


def test_performance_is_deterministic_and_calm_faces_have_no_expression():
    a = motion.performance(60, FPS, np.random.default_rng([1, 2]), talking=True, expression=None)
    b = motion.performance(60, FPS, np.random.default_rng([1, 2]), talking=True, expression=None)
    assert all(np.array_equal(getattr(a, f), getattr(b, f)) for f in a.__dataclass_fields__)
    assert not a.intensity.any() and a.jaw.max() > 0.2
    still = motion.performance(60, FPS, np.random.default_rng(0), talking=False, expression="held", strength=0.7)
    assert not still.jaw.any() and still.intensity.min() > 0.5
