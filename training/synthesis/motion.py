"""How a face moves over time, for both renderers (drawn and photo-real): one generator, no copy per renderer.

A `Performance` is a bundle of per-frame tracks, in units that do not depend on how a face is drawn:

    jaw        (n,)    jaw opening by speech, 0 closed .. 1 a wide open vowel ("ah")
    spread     (n,)    lip corners: +1 spread ("ee"), -1 rounded and pursed ("oo"), 0 at rest
    press      (n,)    lips pressed together (m, b, p) 0 .. 1
    yaw, pitch, roll (n,)  head rotation in degrees (yaw + turns to the image right, pitch + nods down)
    shift      (n, 2)  head translation, in face heights
    scale      (n,)    head size relative to the first frame (towards / away from the camera)
    blink      (n,)    upper-lid closure 0 open .. 1 shut
    gaze       (n, 2)  where the irises look, in eye widths (x right, y down)
    intensity  (n,)    how strongly the expression shows, 0 none .. 1 the prototype's apex

A renderer maps these onto its own geometry (68 drawn points, or the London template's 189).

Why each track looks as it does:
* Speech: syllables at 3-6 a second in phrases of 0.6-3 s with pauses between, each syllable a
  consonant then a vowel from a small viseme table (`VISEMES`: jaw, spread, press per mouth shape),
  the targets smoothed by coarticulation (a Gaussian of ~30 ms), a per-phrase loudness, so the
  jaw and lips move at speech rates with varied amplitude and close on m/b/p.
* Heads: slow smooth wandering (low-pass noise) of yaw, pitch and roll, turns to a side held a
  while, nods (a damped 2-3 Hz pitch oscillation) while talking, drift and scale change.
* Blinks every 2-6 s, ~120 ms; gaze in fixations of 0.3-2 s with one-frame saccades.
* Expressions as they happen in real video (`ENVELOPES`): rising from neutral (CK+'s onset), already
  there when the clip starts and held, fading, coming back; subtle (0.35) to strong (1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Mouth shapes: (jaw opening, lip spread, lip press). Vowels open the jaw; consonants mostly close it.
VISEMES = {
    "aa": (1.0, 0.1, 0.0),  # father
    "ae": (0.7, 0.45, 0.0),  # cat, bed
    "iy": (0.25, 0.9, 0.0),  # see
    "uw": (0.3, -0.9, 0.0),  # you
    "ow": (0.65, -0.55, 0.0),  # go
    "ah": (0.45, 0.0, 0.0),  # the (schwa)
}
CONSONANTS = {
    "mbp": (0.0, 0.0, 1.0),  # lips shut
    "fv": (0.12, 0.1, 0.5),  # lower lip to the upper teeth
    "tdn": (0.2, 0.25, 0.0),
    "sz": (0.12, 0.45, 0.0),  # teeth nearly together, lips apart
    "kg": (0.35, 0.05, 0.0),
    "w": (0.15, -0.9, 0.2),
}
ENVELOPES = ("onset", "held", "fade", "return")


@dataclass
class Performance:
    jaw: np.ndarray
    spread: np.ndarray
    press: np.ndarray
    yaw: np.ndarray
    pitch: np.ndarray
    roll: np.ndarray
    shift: np.ndarray
    scale: np.ndarray
    blink: np.ndarray
    gaze: np.ndarray
    intensity: np.ndarray

    def __len__(self) -> int:
        return len(self.jaw)


def ease(n_frames: int, onset: int) -> np.ndarray:
    """An expression sequence's course: 0 for the `onset` neutral frames, then a smooth (cosine)
    rise to 1 at the last frame (both renderers' CK+-style sequences)."""
    t = np.arange(n_frames, dtype=np.float64)
    s = np.clip((t - onset + 1) / max(1, n_frames - onset), 0, 1)
    return 0.5 - 0.5 * np.cos(np.pi * s)


def smooth_noise(n: int, fps: float, rng, corr_s: float) -> np.ndarray:
    """(n,) low-pass Gaussian noise with unit standard deviation, correlated over ~corr_s seconds."""
    sigma = max(corr_s * fps / 2, 0.5)
    pad = int(3 * sigma) + 1
    white = rng.standard_normal(n + 2 * pad)
    k = np.exp(-0.5 * (np.arange(-pad, pad + 1) / sigma) ** 2)
    x = np.convolve(white, k / np.sqrt((k**2).sum()), mode="same")[pad : pad + n]
    return x


def _gaussian_smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    if sigma < 0.3:
        return x
    pad = int(3 * sigma) + 1
    k = np.exp(-0.5 * (np.arange(-pad, pad + 1) / sigma) ** 2)
    k /= k.sum()
    return np.convolve(np.pad(x, pad, mode="edge"), k, mode="valid")


def speech(
    n: int, fps: float, rng, rate: float | None = None, amount: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(jaw, spread, press) of n frames of talking: phrases of syllables with pauses between.
    `rate` syllables a second (drawn in 3-6 if None); `amount` scales how wide the mouth moves."""
    rate = float(rng.uniform(3.0, 6.0)) if rate is None else float(rate)
    # key frames: (time s, jaw, spread, press); the mouth rests slightly open-closed between phrases
    keys = [(0.0, 0.05, 0.0, 0.1)]
    t = -float(rng.uniform(0, 1.0))  # the video may start mid-phrase
    vowels, consonants = list(VISEMES), list(CONSONANTS)
    duration = n / fps
    while t < duration + 0.5:
        phrase_end = t + float(rng.uniform(0.6, 3.0))
        loud = float(rng.uniform(0.5, 1.2)) * amount
        while t < phrase_end:
            syl = float(rng.uniform(0.75, 1.3)) / rate
            c = CONSONANTS[consonants[rng.integers(len(consonants))]]
            v = VISEMES[vowels[rng.integers(len(vowels))]]
            keys.append((t + 0.2 * syl, loud * c[0], loud * c[1], c[2]))
            keys.append((t + 0.65 * syl, loud * v[0], loud * v[1], v[2]))
            t += syl
        pause = float(rng.uniform(0.15, 0.8))
        keys.append((t + 0.3 * pause, 0.04, 0.0, float(rng.uniform(0.0, 0.6))))  # closed or nearly at rest
        t += pause
    keys = np.array([k for k in keys if -1.0 <= k[0] <= duration + 1.0] or keys[:1])
    order = np.argsort(keys[:, 0], kind="stable")
    keys = keys[order]
    times = np.arange(n) / fps
    sigma = 0.03 * fps  # coarticulation: neighbouring sounds blend
    tracks = [_gaussian_smooth(np.interp(times, keys[:, 0], keys[:, j]), sigma) for j in (1, 2, 3)]
    jaw, spread, press = tracks
    return np.clip(jaw, 0, 1.3), np.clip(spread, -1.2, 1.2), np.clip(press, 0, 1)


def head(n: int, fps: float, rng, max_turn: float = 20.0, talking: bool = True) -> tuple:
    """(yaw, pitch, roll, shift (n, 2), scale) of a head at rest or in conversation."""
    yaw = float(rng.uniform(-0.4, 0.4)) * max_turn + 0.25 * max_turn * smooth_noise(n, fps, rng, 1.5)
    if rng.random() < 0.5:  # a turn to a side, held for a while
        start = int(rng.integers(0, max(1, n)))
        length = int(rng.uniform(0.5, 2.0) * fps)
        target = float(rng.choice([-1, 1])) * float(rng.uniform(0.4, 1.0)) * max_turn
        bump = np.zeros(n)
        bump[start : start + length] = 1.0
        yaw = yaw + (target - yaw) * _gaussian_smooth(bump, 0.12 * fps)
    pitch = float(rng.uniform(-4, 4)) + 3.0 * smooth_noise(n, fps, rng, 1.0)
    if talking:
        for _ in range(int(rng.poisson(n / fps / 3))):  # nods while talking
            s = int(rng.integers(0, max(1, n)))
            f, amp, dur = float(rng.uniform(2, 3)), float(rng.uniform(2, 7)), float(rng.uniform(0.4, 1.0))
            tt = (np.arange(n) - s) / fps
            live = (tt >= 0) & (tt < dur)
            pitch = pitch + live * amp * np.sin(2 * np.pi * f * tt) * np.exp(-2 * np.clip(tt, 0, None) / dur)
    roll = float(rng.uniform(-4, 4)) + 2.5 * smooth_noise(n, fps, rng, 1.5)
    shift = 0.03 * np.stack([smooth_noise(n, fps, rng, 2.0), smooth_noise(n, fps, rng, 2.0)], 1)
    scale = 1 + 0.04 * smooth_noise(n, fps, rng, 3.0)
    return np.clip(yaw, -max_turn, max_turn), np.clip(pitch, -15, 15), roll, shift, scale / scale[0]


def blinks(n: int, fps: float, rng) -> np.ndarray:
    """Upper-lid closure per frame: a blink every 2-6 s (the first within the first 3 s), ~80-160 ms each."""
    closed = np.zeros(n)
    t = float(rng.uniform(0.2, 3.0))
    while t * fps < n:
        dur = float(rng.uniform(0.08, 0.16))
        depth = float(rng.uniform(0.7, 1.0))
        tt = (np.arange(n) / fps - t) / dur  # 0..1 inside the blink
        inside = (tt >= 0) & (tt <= 1)
        closed = np.maximum(
            closed, inside * depth * np.sin(np.pi * np.clip(tt, 0, 1) ** 0.7)
        )  # fast close, slower open
        t += float(rng.uniform(2.0, 6.0))
    return closed


def gaze(n: int, fps: float, rng) -> np.ndarray:
    """(n, 2) iris offset in eye widths: fixations of 0.3-2 s, one-frame saccades between them."""
    out = np.zeros((n, 2))
    i, target = 0, np.zeros(2)
    while i < n:
        length = max(1, int(rng.uniform(0.3, 2.0) * fps))
        out[i : i + length] = target
        i += length
        target = np.array([rng.uniform(-0.18, 0.18), rng.uniform(-0.08, 0.08)]) if rng.random() < 0.7 else np.zeros(2)
    return out


def envelope(n: int, fps: float, rng, kind: str | None = None, strength: float | None = None) -> np.ndarray:
    """(n,) expression intensity over a video: `kind` one of ENVELOPES (drawn if None), peak `strength`
    (drawn in 0.35-1, subtle to strong, if None).
    onset: neutral first (0.2-1.5 s), a rise of 0.3-1 s, then held (CK+'s shape, longer);
    held: there from the first frame, held; fade: there from the first frame, fading to a trace;
    return: there, fading, and coming back."""
    kind = ENVELOPES[int(rng.integers(len(ENVELOPES)))] if kind is None else kind
    if kind not in ENVELOPES:
        raise ValueError(f"unknown envelope {kind!r}; expected one of {ENVELOPES}")
    strength = float(rng.uniform(0.35, 1.0)) if strength is None else float(strength)
    t = np.arange(n) / fps

    def rise(at: float, over: float) -> np.ndarray:
        s = np.clip((t - at) / max(over, 1e-3), 0, 1)
        return 0.5 - 0.5 * np.cos(np.pi * s)

    duration = n / fps
    if kind == "onset":
        lead = float(rng.uniform(0.2, min(1.5, 0.4 * duration)))
        curve = rise(lead, float(rng.uniform(0.3, 1.0)))
    elif kind == "held":
        curve = np.ones(n)
    elif kind == "fade":
        at = float(rng.uniform(0.3, 0.6)) * duration
        curve = 1 - (1 - float(rng.uniform(0.15, 0.35))) * rise(at, float(rng.uniform(0.5, 1.5)))
    else:  # return
        low = float(rng.uniform(0.1, 0.35))
        at = float(rng.uniform(0.15, 0.35)) * duration
        back = at + float(rng.uniform(0.25, 0.4)) * duration
        curve = 1 - (1 - low) * (rise(at, 0.4) - rise(back, 0.4))
    wobble = 1 + 0.06 * smooth_noise(n, fps, rng, 1.0)  # an expression is never perfectly still
    return np.clip(strength * curve * wobble, 0, 1)


def performance(
    n: int,
    fps: float,
    rng,
    talking: bool = True,
    expression: str | None = "onset",
    strength: float | None = None,
    max_turn: float = 20.0,
) -> Performance:
    """Everything a face does in n frames: speech if `talking`, an expression intensity shaped by the
    envelope `expression` (None: no expression; "random": one of ENVELOPES), head motion, blinks, gaze.
    Draws from rng in a fixed order (speech, head, blinks, gaze, envelope)."""
    if talking:
        jaw, spread, press = speech(n, fps, rng)
    else:
        jaw, spread, press = np.zeros(n), np.zeros(n), np.zeros(n)
    yaw, pitch, roll, shift, scale = head(n, fps, rng, max_turn, talking)
    closed = blinks(n, fps, rng)
    look = gaze(n, fps, rng)
    if expression is None:
        intensity = np.zeros(n)
    else:
        intensity = envelope(n, fps, rng, None if expression == "random" else expression, strength)
    return Performance(jaw, spread, press, yaw, pitch, roll, shift, scale, closed, look, intensity)


# The talking videos a person gets in a training set (both renderers write them the same way).
TALK_FPS = 30
TALK_SECONDS = (2.0, 3.0)


def talking_kinds(classes, calm: int) -> list[str]:
    """What a person's talking videos show: `calm` of calm talking (neutral), then one per class."""
    return ["neutral"] * calm + [c for c in classes if c != "neutral"]


def talking_performance(emotion: str, rng, seconds=TALK_SECONDS, fps: float = TALK_FPS) -> Performance:
    """One training video's performance: talking throughout; an expression other than neutral is held
    from the first frame to the last ("held", strength 0.5-1), so every clip shows what the label says."""
    n = int(round(float(rng.uniform(*seconds)) * fps))
    if emotion == "neutral":
        return performance(n, fps, rng, talking=True, expression=None)
    return performance(n, fps, rng, talking=True, expression="held", strength=float(rng.uniform(0.5, 1.0)))
