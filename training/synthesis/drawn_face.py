"""Who a drawn face is and where its 68 points are.

`Subject` is one synthetic identity and the recording session it sits in (face shape and
proportions, colours, hair, age lines; place and scale in the frame, light, camera noise),
`make_subject` draws one within adult face proportions and the spread seen between people, and
`neutral_shape` gives its neutral 68 iBUG points (the order CK+ ships) in face units. Everything
else about a drawn face starts from these points: training.synthesis.drawn moves them (expressions,
speech, head turns) and training.synthesis.drawn_paint draws the features from them, so the
landmarks written are exactly where the brows, eyes, nose, lips and jaw are.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from training.synthesis.facs import DRAWN_AU

# --------------------------------------------------------------------------------------------
# Subjects
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    """One synthetic identity, and the recording session it sits in (light, camera, place).

    Lengths are in face units (1 = hairline to chin), colours BGR 0..255."""

    # face shape
    jaw_width: float  # half width of the face at the ear line
    jaw_square: float  # superellipse exponent of the jaw: 1.8 round .. 2.8 square
    jaw_taper: float  # how much narrower the jaw gets towards the chin
    chin_y: float  # eye line to chin
    skull_height: float  # eye line to top of the skull
    # proportions
    eye_x: float  # half the distance between the eye centres
    eye_w: float  # half width of an eye
    eye_h: float  # eye opening above the corner line
    eye_tilt: float  # outer corners up (+)
    brow_h: float  # eye line to brow
    brow_thick: float
    brow_arch: float
    nose_len: float  # eye line to the base of the nose
    nose_w: float  # half width of the nostril wings
    mouth_y: float  # eye line to the lip line
    mouth_w: float  # half width of the mouth
    lip_upper: float
    lip_lower: float
    # look
    skin: tuple[float, float, float]
    lips: tuple[float, float, float]
    hair: tuple[float, float, float]
    brows: tuple[float, float, float]
    iris: tuple[float, float, float]
    hair_style: str  # "short", "long", "fringe", "bald"
    hairline: float  # eye line to hairline (positive up)
    hair_volume: float
    age_lines: float  # how deep the neutral face's folds are
    # session: camera, place, light
    scale: float  # face height / frame height
    pos: tuple[float, float]  # 0..1 within the room the frame leaves
    roll: float  # degrees
    background: str  # "gradient" or "texture"
    bg_colors: tuple[tuple[float, float, float], tuple[float, float, float]]
    shirt: tuple[float, float, float]
    light_angle: float  # direction of the brightness gradient (radians)
    light_grad: float
    brightness: float
    contrast: float
    noise: float  # sensor noise sigma, grey levels
    blur: float  # optics blur sigma, pixels at 640x490
    au_gain: tuple[tuple[str, float], ...] = field(default=())  # how strongly this person moves each AU
    detail_seed: int = 0  # for static details (asymmetry, hair texture, wrinkle waviness)


def uniform(rng, lo, hi) -> float:
    return float(rng.uniform(lo, hi))


def _skin_colour(tone: float) -> tuple[float, float, float]:
    """BGR skin from tone 0 (very light) to 1 (very dark), along the human skin locus."""
    light, mid, dark = np.array([182, 202, 236]), np.array([120, 148, 190]), np.array([58, 74, 104])
    c = light + (mid - light) * tone * 2 if tone < 0.5 else mid + (dark - mid) * (tone - 0.5) * 2
    return tuple(float(v) for v in c)


def _hair_colour(rng) -> tuple[float, float, float]:
    kind = rng.choice(["black", "brown", "blond", "grey"], p=[0.45, 0.35, 0.12, 0.08])
    base = {"black": (22, 24, 28), "brown": (40, 60, 85), "blond": (95, 150, 185), "grey": (150, 155, 160)}[kind]
    k = uniform(rng, 0.8, 1.2)
    return tuple(float(min(255, v * k)) for v in base)


def make_subject(rng: np.random.Generator) -> Subject:
    """A random identity and session. Ranges follow adult face proportions (eyes a fifth of the
    face width apart, thirds hairline/brow/nose base/chin) with the spread seen between people."""
    tone = float(rng.beta(1.6, 1.8))
    skin = _skin_colour(tone)
    hair = _hair_colour(rng)
    brow_dark = uniform(rng, 0.35, 0.7)
    brows = tuple(float(min(h, s * brow_dark)) for h, s in zip(hair, skin))
    lips = (skin[0] * 0.78, skin[1] * 0.70, min(255.0, skin[2] * 0.92))
    iris = [(30, 45, 70), (45, 70, 95), (110, 100, 80), (90, 110, 90)][int(rng.choice(4, p=[0.5, 0.25, 0.15, 0.1]))]
    bg_level = rng.uniform(40, 225)
    bg_a = tuple(float(v) for v in bg_level * rng.uniform(0.85, 1.15, 3))
    shirt_level = rng.uniform(20, 220)
    if abs(shirt_level - bg_level) < 45:  # shoulders that vanish into the wall look like a floating head
        shirt_level = (shirt_level - 20 + 100) % 200 + 20
    bg_k = uniform(rng, 0.6, 1.3)  # the second colour: mostly lighter or darker, barely another hue
    bg_b = tuple(float(np.clip(v * bg_k * uniform(rng, 0.95, 1.05), 0, 255)) for v in bg_a)
    gains = tuple((au, uniform(rng, 0.8, 1.25)) for au in DRAWN_AU)
    return Subject(
        jaw_width=uniform(rng, 0.34, 0.40),
        jaw_square=uniform(rng, 1.8, 2.8),
        jaw_taper=uniform(rng, 0.05, 0.2),
        chin_y=uniform(rng, 0.52, 0.60),
        skull_height=uniform(rng, 0.58, 0.66),
        eye_x=uniform(rng, 0.155, 0.185),
        eye_w=uniform(rng, 0.072, 0.088),
        eye_h=uniform(rng, 0.026, 0.034),
        eye_tilt=uniform(rng, -0.006, 0.012),
        brow_h=uniform(rng, 0.085, 0.125),
        brow_thick=uniform(rng, 0.022, 0.038),
        brow_arch=uniform(rng, 0.008, 0.03),
        nose_len=uniform(rng, 0.20, 0.25),
        nose_w=uniform(rng, 0.07, 0.095),
        mouth_y=uniform(rng, 0.31, 0.36),
        mouth_w=uniform(rng, 0.115, 0.145),
        lip_upper=uniform(rng, 0.022, 0.036),
        lip_lower=uniform(rng, 0.03, 0.048),
        skin=skin,
        lips=lips,
        hair=hair,
        brows=brows,
        iris=tuple(float(v) for v in iris),
        hair_style=str(rng.choice(["short", "long", "fringe", "bald"], p=[0.45, 0.3, 0.15, 0.1])),
        hairline=uniform(rng, 0.36, 0.47),
        hair_volume=uniform(rng, 0.02, 0.09),
        age_lines=uniform(rng, 0.0, 0.35),
        scale=uniform(rng, 0.35, 0.65),
        pos=(uniform(rng, 0.15, 0.85), uniform(rng, 0.2, 0.8)),
        roll=float(np.clip(rng.normal(0, 3.5), -7, 7)),
        background=str(rng.choice(["gradient", "texture"])),
        bg_colors=(bg_a, bg_b),
        shirt=tuple(float(min(255.0, v)) for v in shirt_level * rng.uniform(0.7, 1.3, 3)),
        light_angle=float(rng.choice([0.0, np.pi, np.pi / 2, -np.pi / 2]) + rng.normal(0, 0.4)),
        light_grad=uniform(rng, 0.0, 0.3),
        brightness=uniform(rng, 0.85, 1.12),
        contrast=uniform(rng, 0.8, 1.15),
        noise=uniform(rng, 1.0, 6.0),
        blur=uniform(rng, 0.3, 1.0),
        au_gain=gains,
        detail_seed=int(rng.integers(2**31)),
    )


# --------------------------------------------------------------------------------------------
# Geometry: the neutral 68 points
# --------------------------------------------------------------------------------------------


def _jaw(s: Subject) -> np.ndarray:
    """17 jaw points, ear to ear, evenly spaced along a superellipse (roundness = jaw_square)."""
    phi = np.linspace(0, np.pi / 2, 400)
    e = 2 / s.jaw_square
    x = -s.jaw_width * np.cos(phi) ** e * (1 - s.jaw_taper * np.sin(phi) ** 2)
    y = s.chin_y * np.sin(phi) ** e
    seg = np.hypot(np.diff(x), np.diff(y))
    arc = np.concatenate([[0], np.cumsum(seg)])
    at = np.linspace(0, arc[-1], 9)
    left = np.stack([np.interp(at, arc, x), np.interp(at, arc, y)], 1)
    right = left[-2::-1] * [-1, 1]
    return np.vstack([left, right])


def _brow(s: Subject, side: int) -> np.ndarray:
    """5 points on the brow's upper edge, outer to inner, peaking a third of the way in."""
    t = np.linspace(0, 1, 5)  # 0 outer .. 1 inner
    inner, outer = s.eye_x - s.eye_w * 0.75, s.eye_x + s.eye_w * 1.25
    x = outer + (inner - outer) * t
    bump = 1 - ((t - 0.38) / 0.62) ** 2
    y = -s.brow_h - s.brow_arch * bump + s.brow_arch * 0.4 * (t < 0.2) * (0.2 - t) * 5
    return np.stack([side * x, y], 1)


def _eye(s: Subject, side: int) -> np.ndarray:
    """6 points: outer corner, two upper lid, inner corner, two lower lid (iBUG order for the
    image-left eye; the image-right eye is reordered by the caller)."""
    cx, w, h = s.eye_x, s.eye_w, s.eye_h
    pts = [
        (cx + w, -s.eye_tilt),
        (cx + 0.32 * w, -h - 0.3 * s.eye_tilt),
        (cx - 0.32 * w, -h * 0.95),
        (cx - w, 0.004),
        (cx - 0.32 * w, h * 0.72),
        (cx + 0.32 * w, h * 0.72 - 0.3 * s.eye_tilt),
    ]
    return np.array([(side * x, y) for x, y in pts])


def neutral_shape(s: Subject) -> np.ndarray:
    """The subject's neutral 68 iBUG points in face units (float64, (68, 2))."""
    p = np.zeros((68, 2))
    p[0:17] = _jaw(s)
    p[17:22] = _brow(s, -1)
    p[22:27] = _brow(s, 1)[::-1]
    tip = s.nose_len - 0.035
    p[27:31] = np.stack([np.zeros(4), np.linspace(0.0, tip, 4)], 1)
    n = s.nose_len
    p[31:36] = [
        (-s.nose_w, n - 0.028),
        (-s.nose_w * 0.45, n - 0.006),
        (0, n),
        (s.nose_w * 0.45, n - 0.006),
        (s.nose_w, n - 0.028),
    ]
    p[36:42] = _eye(s, -1)
    right = _eye(s, 1)
    p[42:48] = right[[3, 2, 1, 0, 5, 4]]
    m, w, uh, lh = s.mouth_y, s.mouth_w, s.lip_upper, s.lip_lower
    p[48:60] = [
        (-w, m),
        (-0.6 * w, m - 0.75 * uh),
        (-0.2 * w, m - uh),
        (0, m - 0.86 * uh),
        (0.2 * w, m - uh),
        (0.6 * w, m - 0.75 * uh),
        (w, m),
        (0.6 * w, m + 0.8 * lh),
        (0.25 * w, m + 0.97 * lh),
        (0, m + lh),
        (-0.25 * w, m + 0.97 * lh),
        (-0.6 * w, m + 0.8 * lh),
    ]
    p[60:68] = [
        (-0.86 * w, m),
        (-0.45 * w, m + 0.002),
        (0, m + 0.003),
        (0.45 * w, m + 0.002),
        (0.86 * w, m),
        (0.45 * w, m + 0.002),
        (0, m + 0.003),
        (-0.45 * w, m + 0.002),
    ]
    # Nobody is symmetric: a small fixed per-person jitter.
    p += np.random.default_rng(s.detail_seed).normal(0, 0.0025, p.shape)
    return p
