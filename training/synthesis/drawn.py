"""Synthetic facial-expression videos in the CK+ layout.

The real CK+ cannot be shipped, so tests and the default model train on this stand-in. It is
written in exactly the CK+ tree (cohn-kanade-images / Emotion / Landmarks), so the real CK+
loader reads it unchanged, and every sequence goes like a CK+ one: neutral first, expression
rising to its peak at the last frame, label named after the last frame.

Design
------
* Geometry first. A face is the 68 iBUG points (the order CK+ ships), built from a subject's
  proportions in *face units* (1 = hairline to chin; origin between the eyes, y down). An
  expression is a displacement of those points, the sum of FACS action units (AUs) at a
  per-sequence intensity. Every feature is then *drawn from the points* (splines through
  them), so the landmarks written are exactly where the brows, eyes, nose, lips and jaw are.
* A face is rendered on a canvas in face coordinates (at its final pixel scale) and warped
  into the frame by one affine map (position, scale, roll, drift); the same map moves the
  landmarks. Shapes are cv2 anti-aliased polygons in small regions of interest, soft shading
  is drawn at low resolution and blurred, so a 640x490 frame costs a few milliseconds.
* Shading is what makes a classical detector (Haar cascade) see a face: dark eye sockets,
  brows and lashes against lighter cheeks and forehead, a light nose bridge between the
  eyes, a dark mouth line and nostrils, a darker rim around the face.
* Expressions follow Ekman & Friesen's prototypes as AU combinations (see _EMOTIONS; each AU's
  point motion is commented in _AU), with the texture cues the AUs create, because at
  48x48 px wrinkles and the mouth interior tell as much as the point motion:
    anger     AU4 brows down and together (glabella lines), AU5+7 glaring narrowed eyes,
              AU23/24 thin pressed lips
    contempt  AU12+14 on one side only (random per sequence): a raised, dimpled lip corner
    disgust   AU9 nose wrinkles and lowered medial brows, AU10 raised upper lip baring the
              teeth, AU15/17, deep nasolabial folds
    fear      AU1+2+4 raised brows drawn together, AU5 white above the iris, AU20 lips
              stretched sideways, AU25/26 parted showing teeth
    happy     AU6 raised cheeks (narrowed eyes, crow's feet), AU12 corners up and out,
              nasolabial folds; in 70 % of sequences AU25 parted lips with teeth
    sadness   AU1+4 oblique brows, AU15 corners down, AU17 chin raised and dimpled, AU43
              slightly drooping lids
    surprise  AU1+2 brows high (forehead lines), AU5 wide eyes, AU26/27 jaw drop: a vertical
              dark oval mouth
  Each sequence has a peak intensity in [0.6, 1]; each subject a gain per AU in [0.8, 1.25]
  (people move their faces differently). Unlabelled sequences (about one subject in four,
  as in CK+) mix two prototypes, like CK+'s expressions that fit no prototype.
* Nuisances a model must learn to ignore, each because CK+ (or a webcam) has it:
  identity (jaw width, squareness and taper, face length, eye spacing and size, brow height
  and thickness, nose and mouth size, skin tone light to dark, hair style and colour or no
  hair), so it cannot learn a person; place and scale in the frame (face 35-65 % of the
  height) and a roll of up to 8 degrees, so it depends on the face crop, not on where the
  face is; a few pixels of head drift and tiny landmark jitter over a sequence, and blinks
  in the neutral frames only (never at the peak), so motion alone is not the expression;
  light level, contrast and a left/right or top/bottom gradient, a gradient or blotchy
  background and a shirt, sensor noise (sigma 1-6) and slight optical blur, so it does not
  rely on clean pixels; 80 % gray and 20 % colour files, 10 % short sequences (4-7 frames),
  1-4 neutral onset frames.
* Performances (`render_performance`, the talking videos of `write_talking_dataset`): the same
  face driven by training.synthesis.motion's tracks (speech on the mouth and jaw points, a parallax
  head turn, blinks, drift), written as class folders of H.264 videos.
* Determinism: subject i draws everything from ``np.random.default_rng([seed, i])`` and its
  k-th sequence from ``default_rng([seed, i, k])``, so a subject's files do not depend on how
  many subjects are written, or on the order workers finish in (bytes are identical).
"""

from __future__ import annotations

import os
import sys
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

CLASSES = ("anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise")  # CK+ codes 1..7
CODES = {name: i + 1 for i, name in enumerate(CLASSES)}

# Canvas extent in face units: wide enough for hair, tall enough for the neck under the chin.
X0, X1, Y0, Y1 = -0.9, 0.9, -0.85, 1.05
SHIFT = 4  # sub-pixel bits for cv2 drawing
GRAY_WEIGHTS = np.array([0.114, 0.587, 0.299], np.float32)  # BGR -> gray, as cv2

# Which side of the face each landmark is on, as seen in the image (-1 left, 0 midline, +1 right).
_SIDE = np.array(
    [-1] * 8 + [0] + [1] * 8  # jaw
    + [-1] * 5 + [1] * 5  # brows
    + [0] * 4 + [-1, -1, 0, 1, 1]  # nose
    + [-1] * 6 + [1] * 6  # eyes
    + [-1, -1, -1, 0, 1, 1, 1, 1, 1, 0, -1, -1]  # outer lip 48..59
    + [-1, -1, 0, 1, 1, 1, 0, -1],  # inner lip 60..67
    np.float32,
)


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


def _u(rng, lo, hi) -> float:
    return float(rng.uniform(lo, hi))


def _skin_colour(tone: float) -> tuple[float, float, float]:
    """BGR skin from tone 0 (very light) to 1 (very dark), along the human skin locus."""
    light, mid, dark = np.array([182, 202, 236]), np.array([120, 148, 190]), np.array([58, 74, 104])
    c = light + (mid - light) * tone * 2 if tone < 0.5 else mid + (dark - mid) * (tone - 0.5) * 2
    return tuple(float(v) for v in c)


def _hair_colour(rng) -> tuple[float, float, float]:
    kind = rng.choice(["black", "brown", "blond", "grey"], p=[0.45, 0.35, 0.12, 0.08])
    base = {"black": (22, 24, 28), "brown": (40, 60, 85), "blond": (95, 150, 185), "grey": (150, 155, 160)}[kind]
    k = _u(rng, 0.8, 1.2)
    return tuple(float(min(255, v * k)) for v in base)


def make_subject(rng: np.random.Generator) -> Subject:
    """A random identity and session. Ranges follow adult face proportions (eyes a fifth of the
    face width apart, thirds hairline/brow/nose base/chin) with the spread seen between people."""
    tone = float(rng.beta(1.6, 1.8))
    skin = _skin_colour(tone)
    hair = _hair_colour(rng)
    brow_dark = _u(rng, 0.35, 0.7)
    brows = tuple(float(min(h, s * brow_dark)) for h, s in zip(hair, skin))
    lips = (skin[0] * 0.78, skin[1] * 0.70, min(255.0, skin[2] * 0.92))
    iris = [(30, 45, 70), (45, 70, 95), (110, 100, 80), (90, 110, 90)][int(rng.choice(4, p=[0.5, 0.25, 0.15, 0.1]))]
    bg_level = rng.uniform(40, 225)
    bg_a = tuple(float(v) for v in bg_level * rng.uniform(0.85, 1.15, 3))
    shirt_level = rng.uniform(20, 220)
    if abs(shirt_level - bg_level) < 45:  # shoulders that vanish into the wall look like a floating head
        shirt_level = (shirt_level - 20 + 100) % 200 + 20
    bg_k = _u(rng, 0.6, 1.3)  # the second colour: mostly lighter or darker, barely another hue
    bg_b = tuple(float(np.clip(v * bg_k * _u(rng, 0.95, 1.05), 0, 255)) for v in bg_a)
    gains = tuple((au, _u(rng, 0.8, 1.25)) for au in _AU)
    return Subject(
        jaw_width=_u(rng, 0.34, 0.40),
        jaw_square=_u(rng, 1.8, 2.8),
        jaw_taper=_u(rng, 0.05, 0.2),
        chin_y=_u(rng, 0.52, 0.60),
        skull_height=_u(rng, 0.58, 0.66),
        eye_x=_u(rng, 0.155, 0.185),
        eye_w=_u(rng, 0.072, 0.088),
        eye_h=_u(rng, 0.026, 0.034),
        eye_tilt=_u(rng, -0.006, 0.012),
        brow_h=_u(rng, 0.085, 0.125),
        brow_thick=_u(rng, 0.022, 0.038),
        brow_arch=_u(rng, 0.008, 0.03),
        nose_len=_u(rng, 0.20, 0.25),
        nose_w=_u(rng, 0.07, 0.095),
        mouth_y=_u(rng, 0.31, 0.36),
        mouth_w=_u(rng, 0.115, 0.145),
        lip_upper=_u(rng, 0.022, 0.036),
        lip_lower=_u(rng, 0.03, 0.048),
        skin=skin,
        lips=lips,
        hair=hair,
        brows=brows,
        iris=tuple(float(v) for v in iris),
        hair_style=str(rng.choice(["short", "long", "fringe", "bald"], p=[0.45, 0.3, 0.15, 0.1])),
        hairline=_u(rng, 0.36, 0.47),
        hair_volume=_u(rng, 0.02, 0.09),
        age_lines=_u(rng, 0.0, 0.35),
        scale=_u(rng, 0.35, 0.65),
        pos=(_u(rng, 0.15, 0.85), _u(rng, 0.2, 0.8)),
        roll=float(np.clip(rng.normal(0, 3.5), -7, 7)),
        background=str(rng.choice(["gradient", "texture"])),
        bg_colors=(bg_a, bg_b),
        shirt=tuple(float(min(255.0, v)) for v in shirt_level * rng.uniform(0.7, 1.3, 3)),
        light_angle=float(rng.choice([0.0, np.pi, np.pi / 2, -np.pi / 2]) + rng.normal(0, 0.4)),
        light_grad=_u(rng, 0.0, 0.3),
        brightness=_u(rng, 0.85, 1.12),
        contrast=_u(rng, 0.8, 1.15),
        noise=_u(rng, 1.0, 6.0),
        blur=_u(rng, 0.3, 1.0),
        au_gain=gains,
        detail_seed=int(rng.integers(2**31)),
    )


# --------------------------------------------------------------------------------------------
# Geometry: the neutral 68 points and the AU displacements
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
    p[31:36] = [(-s.nose_w, n - 0.028), (-s.nose_w * 0.45, n - 0.006), (0, n), (s.nose_w * 0.45, n - 0.006), (s.nose_w, n - 0.028)]
    p[36:42] = _eye(s, -1)
    right = _eye(s, 1)
    p[42:48] = right[[3, 2, 1, 0, 5, 4]]
    m, w, uh, lh = s.mouth_y, s.mouth_w, s.lip_upper, s.lip_lower
    p[48:60] = [
        (-w, m), (-0.6 * w, m - 0.75 * uh), (-0.2 * w, m - uh), (0, m - 0.86 * uh), (0.2 * w, m - uh), (0.6 * w, m - 0.75 * uh),
        (w, m), (0.6 * w, m + 0.8 * lh), (0.25 * w, m + 0.97 * lh), (0, m + lh), (-0.25 * w, m + 0.97 * lh), (-0.6 * w, m + 0.8 * lh),
    ]
    p[60:68] = [
        (-0.86 * w, m), (-0.45 * w, m + 0.002), (0, m + 0.003), (0.45 * w, m + 0.002),
        (0.86 * w, m), (0.45 * w, m + 0.002), (0, m + 0.003), (-0.45 * w, m + 0.002),
    ]
    # Nobody is symmetric: a small fixed per-person jitter.
    p += np.random.default_rng(s.detail_seed).normal(0, 0.0025, p.shape)
    return p


# AU displacements at full intensity, in face units: AU -> [(points, outward dx, dy)].
# "Outward" is away from the midline, so one entry serves both sides of the face.
_AU: dict[str, list[tuple[tuple[int, ...], float, float]]] = {
    # inner brow raiser: the inner brow heads go up, the outer ends stay
    "AU1": [((21, 22), 0, -0.048), ((20, 23), 0, -0.034), ((19, 24), 0, -0.018), ((18, 25), 0, -0.007)],
    # outer brow raiser
    "AU2": [((17, 26), 0.004, -0.05), ((18, 25), 0, -0.046), ((19, 24), 0, -0.032), ((20, 23), 0, -0.016), ((21, 22), 0, -0.005)],
    # brow lowerer: inner brows down and together, lids pushed down a little
    "AU4": [((21, 22), -0.022, 0.036), ((20, 23), -0.014, 0.029), ((19, 24), -0.006, 0.019), ((18, 25), 0, 0.01),
            ((17, 26), 0, 0.004), ((37, 38, 43, 44), 0, 0.004)],
    # upper lid raiser: more white above the iris
    "AU5": [((37, 38, 43, 44), 0, -0.02)],
    # cheek raiser: lower lids pushed up from below, eye corners and nostril wings up
    "AU6": [((40, 41, 46, 47), 0, -0.017), ((37, 38, 43, 44), 0, 0.004), ((36, 45), 0, -0.006), ((31, 35), 0, -0.005),
            ((1, 2, 14, 15), 0, -0.006)],
    # lid tightener: narrowed eyes, mostly from the lower lid
    "AU7": [((40, 41, 46, 47), 0, -0.013), ((37, 38, 43, 44), 0, 0.005)],
    # nose wrinkler: nostril wings and upper lip pulled up, medial brows pulled down
    "AU9": [((31, 35), 0.006, -0.022), ((32, 34), 0.003, -0.02), ((33,), 0, -0.016), ((30,), 0, -0.01), ((29,), 0, -0.006),
            ((21, 22), -0.006, 0.016), ((20, 23), 0, 0.01), ((40, 41, 46, 47), 0, -0.007),
            ((49, 50, 51, 52, 53), 0, -0.012), ((61, 62, 63), 0, -0.01)],
    # upper lip raiser: the upper lip's middle goes up, parting it from the lower lip
    "AU10": [((50, 51, 52), 0, -0.028), ((49, 53), 0.004, -0.022), ((61, 62, 63), 0, -0.022), ((48, 54), 0, -0.006), ((60, 64), 0, -0.008)],
    # lip corner puller: corners up and out along the zygomatic muscle
    "AU12": [((48, 54), 0.036, -0.05), ((60, 64), 0.034, -0.047), ((49, 53), 0.016, -0.022), ((59, 55), 0.017, -0.02),
             ((61, 63), 0.012, -0.016), ((65, 67), 0.012, -0.012), ((50, 52), 0.005, -0.007), ((58, 56), 0.005, -0.004),
             ((3, 4, 12, 13), 0.005, -0.005)],
    # dimpler: corners tightened back (in a frontal view: slightly in and up)
    "AU14": [((48, 54), -0.004, -0.008), ((60, 64), -0.004, -0.008), ((49, 59, 53, 55), 0, -0.003)],
    # lip corner depressor
    "AU15": [((48, 54), 0.002, 0.032), ((60, 64), 0.002, 0.029), ((49, 53), 0, 0.011), ((59, 55), 0, 0.013), ((61, 63, 65, 67), 0, 0.011)],
    # chin raiser: chin boss and lower lip pushed up
    "AU17": [((56, 57, 58), 0, -0.017), ((55, 59), 0, -0.01), ((65, 66, 67), 0, -0.012), ((61, 62, 63), 0, -0.006),
             ((7, 8, 9), 0, -0.012), ((6, 10), 0, -0.006)],
    # lip stretcher: lips pulled sideways and flattened
    "AU20": [((48, 54), 0.036, 0.006), ((60, 64), 0.034, 0.006), ((49, 53), 0.02, 0.004), ((59, 55), 0.02, -0.002),
             ((50, 52, 56, 58), 0.008, 0), ((50, 51, 52), 0, 0.004), ((56, 57, 58), 0, -0.006)],
    # lip tightener + presser: narrower, thinner lips, pressed together
    "AU23": [((48, 54), -0.013, 0), ((60, 64), -0.013, 0), ((49, 53), -0.006, 0.007), ((50, 51, 52), 0, 0.011),
             ((55, 59), -0.006, -0.009), ((56, 57, 58), 0, -0.015)],
    # lips part
    "AU25": [((61, 62, 63), 0, -0.008), ((65, 66, 67), 0, 0.013), ((55, 56, 57, 58, 59), 0, 0.009)],
    # jaw drop: lower lip and chin go down, corners in, the cheeks lengthen
    "AU26": [((56, 57, 58), 0, 0.058), ((55, 59), 0, 0.05), ((66,), 0, 0.06), ((65, 67), 0, 0.052), ((48, 54), -0.012, 0.022),
             ((60, 64), -0.012, 0.022), ((49, 53), -0.003, 0.004), ((8,), 0, 0.062), ((7, 9), -0.004, 0.058),
             ((6, 10), -0.007, 0.047), ((5, 11), -0.008, 0.034), ((4, 12), -0.006, 0.021), ((3, 13), -0.003, 0.01), ((2, 14), 0, 0.004)],
    # mouth stretch: jaw further down, the opening becomes a vertical oval
    "AU27": [((56, 57, 58), 0, 0.045), ((55, 59), 0, 0.036), ((66,), 0, 0.048), ((65, 67), 0, 0.042), ((48, 54), -0.02, 0.02),
             ((60, 64), -0.022, 0.02), ((61, 62, 63), 0, -0.008), ((8,), 0, 0.048), ((7, 9), -0.003, 0.045),
             ((6, 10), -0.006, 0.036), ((5, 11), -0.006, 0.026), ((4, 12), -0.004, 0.015), ((3, 13), 0, 0.006)],
    # upper lids droop (sadness), eyes look tired
    "AU43": [((37, 38, 43, 44), 0, 0.009)],
}

# Prototypes: AU weights, texture cues at the peak. Textures: glabella (vertical lines between
# the brows), forehead (horizontal, full width), forehead_c (central only, AU1), nose (AU9
# wrinkles), naso (nasolabial folds), crow (crow's feet), bags (raised lower lids), chin (AU17
# dimpling), cheek (raised cheek highlight), dimple (AU14, one side), teeth.
_EMOTIONS = {
    "anger": ({"AU4": 2.0, "AU5": 0.4, "AU7": 1.5, "AU23": 1.4}, {"glabella": 1.3, "naso": 0.3, "bags": 0.4}),
    "contempt": ({"AU12": 1.5, "AU14": 1.6}, {"dimple": 1.3, "naso": 0.6}),  # one-sided, see _expression
    # disgust: nose and upper lip, little brow lowering (with AU4 0.5 it was read as anger: benchmarks/expression_look.py)
    "disgust": ({"AU9": 1.6, "AU10": 1.8, "AU4": 0.2, "AU15": 0.6, "AU17": 0.5, "AU7": 0.3},
                {"nose": 1.2, "naso": 1.2, "glabella": 0.5, "bags": 0.6, "teeth": 0.7}),
    "fear": ({"AU1": 1.0, "AU2": 0.7, "AU4": 0.6, "AU5": 1.0, "AU20": 1.0, "AU25": 1.0, "AU26": 0.45},
             {"forehead_c": 0.8, "glabella": 0.3, "teeth": 0.6}),
    "happy": ({"AU6": 1.1, "AU12": 1.2}, {"crow": 1.0, "naso": 1.0, "cheek": 1.0, "bags": 0.7, "teeth": 1.0}),
    "sadness": ({"AU1": 1.3, "AU4": 0.5, "AU15": 1.3, "AU17": 0.8, "AU43": 1.0}, {"forehead_c": 0.5, "chin": 0.8, "glabella": 0.3}),
    "surprise": ({"AU1": 1.0, "AU2": 1.0, "AU5": 1.0, "AU26": 1.1, "AU27": 0.6}, {"forehead": 1.0, "teeth": 0.3}),
    "neutral": ({}, {}),
}


@dataclass
class Expression:
    """A sequence's peak: point displacement (face units) and texture cue strengths."""

    disp: np.ndarray
    tex: dict[str, float]
    side: int = 1  # which lip corner a one-sided (contempt) expression uses
    neutral: bool = False  # no expression: blinks may come anywhere but the first and last frame


def _au_disp(au: str) -> np.ndarray:
    d = np.zeros((68, 2))
    for idx, dx, dy in _AU[au]:
        idx = list(idx)
        d[idx, 0] += _SIDE[idx] * dx
        d[idx, 1] += dy
    return d


def _expression(s: Subject, emotion: str, rng: np.random.Generator) -> Expression:
    """The peak of one sequence: prototype AUs, scaled by a per-sequence intensity in [0.6, 1],
    the subject's own gain per AU and a little per-sequence variation."""
    aus, tex = _EMOTIONS[emotion]
    aus = dict(aus)
    intensity = _u(rng, 0.6, 1.0)
    gain = dict(s.au_gain)
    side = int(rng.choice([-1, 1]))
    if emotion == "happy" and rng.random() < 0.7:  # most CK+ smiles part the lips
        aus.update({"AU25": 1.3, "AU26": 0.3})
    if emotion == "surprise":
        aus["AU27"] = _u(rng, 0.4, 1.0)
    disp = np.zeros((68, 2))
    for au, w in aus.items():
        disp += _au_disp(au) * w * gain[au] * _u(rng, 0.85, 1.15)
    if emotion == "contempt":
        # One corner only; the midline points follow halfway.
        disp *= np.where(_SIDE == side, 1.0, np.where(_SIDE == 0, 0.3, 0.0))[:, None]
    tex = {k: v * intensity for k, v in tex.items()}
    return Expression(disp * intensity, tex, side)


def _blend(a: Expression, b: Expression, rng) -> Expression:
    """A non-prototypic mix (CK+'s unlabelled sequences are expressions no prototype fits)."""
    wa, wb = _u(rng, 0.3, 0.7), _u(rng, 0.3, 0.7)
    tex = {k: wa * a.tex.get(k, 0) + wb * b.tex.get(k, 0) for k in set(a.tex) | set(b.tex)}
    return Expression(wa * a.disp + wb * b.disp, tex, a.side)


def _blink(p: np.ndarray, closed: float) -> np.ndarray:
    """Upper lids moved down onto the lower lids by `closed` (0 open .. 1 shut)."""
    p = p.copy()
    for up, low in ((37, 41), (38, 40), (43, 47), (44, 46)):
        p[up] += (p[low] - p[up]) * closed * 0.92
    return p


# --------------------------------------------------------------------------------------------
# Drawing helpers: soft anti-aliased shapes, only inside their bounding box
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _spline_basis(n_pts: int, n: int, closed: bool) -> np.ndarray:
    """Matrix turning the (padded) control points into Catmull-Rom curve points."""
    t = np.linspace(0, 1, n, endpoint=False)
    w = 0.5 * np.stack([-t + 2 * t**2 - t**3, 2 - 5 * t**2 + 3 * t**3, t + 4 * t**2 - 3 * t**3, -(t**2) + t**3], 1)
    segs = n_pts if closed else n_pts - 1
    basis = np.zeros((segs * n + (not closed), n_pts + 2 + closed))
    for i in range(segs):
        basis[i * n : (i + 1) * n, i : i + 4] = w
    if not closed:
        basis[-1, n_pts] = 1.0  # end exactly on the last point
    return basis


def _spline(pts, n: int = 8, closed: bool = False) -> np.ndarray:
    """Catmull-Rom curve through the points (passes through each of them)."""
    p = np.asarray(pts, np.float64)
    ext = np.vstack([p[-1:], p, p[:2]]) if closed else np.vstack([2 * p[0] - p[1], p, 2 * p[-1] - p[-2]])
    return _spline_basis(len(p), n, closed) @ ext


def _ellipse(c, ax: float, ay: float, angle: float = 0.0, n: int = 36) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    x, y = ax * np.cos(t), ay * np.sin(t)
    ca, sa = np.cos(angle), np.sin(angle)
    return np.stack([c[0] + ca * x - sa * y, c[1] + sa * x + ca * y], 1)


def _soft_mask(h: int, w: int, polys, width: float, closed: bool, blur: float) -> np.ndarray:
    """Float 0..1 mask of filled polygons (width 0) or polylines, blurred by sigma `blur` px.
    Broad soft shapes are drawn at low resolution and scaled up: the blur costs k^2 less."""
    k = blur / 2.5 if blur > 5 else 1.0
    hs, ws = max(2, int(np.ceil(h / k))), max(2, int(np.ceil(w / k)))
    kx, ky = w / ws, h / hs
    m = np.zeros((hs, ws), np.uint8)
    pts = [np.round(((p + 0.5) / (kx, ky) - 0.5) * (1 << SHIFT)).astype(np.int32) for p in polys]
    if width <= 0:
        cv2.fillPoly(m, pts, 255, cv2.LINE_AA, SHIFT)
    else:
        cv2.polylines(m, pts, closed, 255, max(1, int(round(width / k))), cv2.LINE_AA, SHIFT)
    a = m.astype(np.float32) * (1 / 255)
    if blur / k > 0.3:
        a = cv2.GaussianBlur(a, (0, 0), blur / k)
    if k > 1:
        a = cv2.resize(a, (w, h), interpolation=cv2.INTER_LINEAR)
    return a


def _roi(img, polys, pad: float):
    allp = np.vstack(polys)
    h, w = img.shape[:2]
    x0, y0 = (np.floor(allp.min(0) - pad)).astype(int)
    x1, y1 = (np.ceil(allp.max(0) + pad)).astype(int) + 1
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    return (x0, y0, x1, y1) if x1 > x0 + 1 and y1 > y0 + 1 else None


def _mask_in(img, polys, width=0.0, closed=True, blur=0.0):
    polys = [np.asarray(p, np.float64) for p in polys]
    box = _roi(img, polys, 3 * blur + width + 2)
    if box is None:
        return None, None
    x0, y0, x1, y1 = box
    return box, _soft_mask(y1 - y0, x1 - x0, [p - (x0, y0) for p in polys], width, closed, blur)


def _paint(img, polys, color, alpha=1.0, blur=0.0, width=0.0, closed=True) -> None:
    """Premultiplied 'over': img (H, W, C+1) gets colour (C,) with coverage alpha*mask."""
    box, a = _mask_in(img, polys, width, closed, blur)
    if box is None:
        return
    x0, y0, x1, y1 = box
    roi = img[y0:y1, x0:x1]
    roi += (np.append(color, 1.0).astype(np.float32) - roi) * (a * alpha)[..., None]


def _shade(img, polys, amount, blur=0.0, width=0.0, closed=True) -> None:
    """Multiply the colour under a soft shape by (1 + amount): < 0 darkens, > 0 lightens."""
    if abs(amount) < 1e-3:
        return
    box, a = _mask_in(img, polys, width, closed, blur)
    if box is None:
        return
    x0, y0, x1, y1 = box
    img[y0:y1, x0:x1, :-1] *= (1 + amount * a)[..., None]


def _col(bgr, nch: int) -> np.ndarray:
    c = np.asarray(bgr, np.float32)
    return c if nch == 3 else np.array([c @ GRAY_WEIGHTS], np.float32)


# --------------------------------------------------------------------------------------------
# Face rendering on the canvas (face units -> canvas pixels: (u - (X0, Y0)) * ppu)
# --------------------------------------------------------------------------------------------


@dataclass
class _Look:
    """Everything fixed for a sequence: colours in the file's channels, scales, static layers."""

    s: Subject
    ppu: float  # canvas pixels per face unit
    nch: int
    skin: np.ndarray
    lips: np.ndarray
    brows: np.ndarray
    iris: np.ndarray
    gaze: np.ndarray  # iris offset, face units
    back: np.ndarray  # canvas with hair behind the head, neck, ears
    front: np.ndarray  # hair in front of the head (premultiplied, C+1)
    front_box: tuple[int, int, int, int] | None
    detail: np.ndarray  # static random numbers for wrinkle placement
    mottle: np.ndarray | None = None  # skin blotchiness, a multiplier over the canvas


def _px(look: _Look, u) -> np.ndarray:
    return (np.asarray(u, np.float64) - (X0, Y0)) * look.ppu


def _canvas_shape(ppu: float) -> tuple[int, int]:
    return int(np.ceil((Y1 - Y0) * ppu)), int(np.ceil((X1 - X0) * ppu))


def _skull(s: Subject, p0) -> np.ndarray:
    """Top of the head from the right ear (jaw point 16) over to the left ear (point 0)."""
    left, right = p0[0], p0[16]
    c = (left + right) / 2
    ax, ay = (right[0] - left[0]) / 2, s.skull_height + c[1]
    t = np.linspace(0, np.pi, 40)
    e = 2 / 2.6
    ax = ax + 0.05 * np.sin(t)  # the cranium bulges wider than the face above the temples
    return np.stack([c[0] + ax * np.sign(np.cos(t)) * np.abs(np.cos(t)) ** e, c[1] - ay * np.sin(t) ** e], 1)


def _hair_polys(s: Subject, p0) -> tuple[list, list]:
    """Hair behind the head (long hair) and in front of it (the cap down to the hairline)."""
    if s.hair_style == "bald":
        return [], []
    skull = _skull(s, p0)
    c = (p0[0] + p0[16]) / 2
    t = np.linspace(0, np.pi, len(skull))[:, None]
    radial = (skull - c) / np.linalg.norm(skull - c, axis=1, keepdims=True)
    # Hair is thickest on top and hugs the head above the ears.
    outer = skull + radial * s.hair_volume * (0.3 + 0.7 * np.sin(t))
    a, hl = s.jaw_width, s.hairline
    # Hairline, left to right: sideburn, temple, forehead corner, centre.
    half = np.array([[-0.97 * a, 0.03], [-0.9 * a, -0.14], [-0.72 * a, -0.8 * hl], [-0.38 * a, -0.97 * hl]])
    line = _spline(np.vstack([half, [[0, -hl]], half[::-1] * [-1, 1]]), 5)
    if s.hair_style == "fringe":
        # bangs: the middle of the hairline hangs down to just above the brows, ragged
        low = s.brow_h + s.brow_arch + 0.07
        mid = np.abs(line[:, 0]) < 0.75 * a
        ragged = 0.012 * np.cos(np.arange(len(line)) * 2.3)
        line[mid, 1] = np.maximum(line[mid, 1], -low - 0.05 * (line[mid, 0] / (0.75 * a)) ** 2 + ragged[mid])
    front = [np.vstack([outer, line])]
    back = []
    if s.hair_style == "long":
        w = a + s.hair_volume + 0.05
        back.append(np.vstack([outer, [[-w, 0.25], [-w + 0.03, 0.85], [w - 0.03, 0.85], [w, 0.25]]]))
    return back, front


def _hair_layer(look: _Look, polys, rng) -> np.ndarray:
    """Hair with vertical strand texture and a sheen near the crown."""
    h, w = _canvas_shape(look.ppu)
    layer = np.zeros((h, w, look.nch + 1), np.float32)
    if not polys:
        return layer
    strands = rng.standard_normal((h, w)).astype(np.float32)
    strands = cv2.GaussianBlur(strands, (0, 0), sigmaX=max(0.6, look.ppu * 0.003), sigmaY=max(2.0, look.ppu * 0.03))
    strands *= 0.25 / (strands.std() + 1e-6)
    px = [_px(look, p) for p in polys]
    box, a = _mask_in(layer, px, blur=look.ppu * 0.006)
    x0, y0, x1, y1 = box
    hair = _col(look.s.hair, look.nch)
    tex = 1 + strands[y0:y1, x0:x1]
    crown = _px(look, (0.12, -look.s.skull_height * 0.85))
    yy, xx = np.mgrid[y0:y1, x0:x1]
    shine = 0.08 + 0.25 * (1 - float(hair.mean()) / 255)  # light hair would burn out
    sheen = 1 + shine * np.exp(-(((xx - crown[0]) ** 2 + (yy - crown[1]) ** 2) / (2 * (0.12 * look.ppu) ** 2)))
    layer[y0:y1, x0:x1, :-1] = np.clip(hair * (tex * sheen)[..., None], 0, 255) * a[..., None]
    layer[y0:y1, x0:x1, -1] = a
    return layer


def _make_look(s: Subject, ppu: float, nch: int, rng) -> _Look:
    detail = np.random.default_rng(s.detail_seed + 1).uniform(-1, 1, 64)
    h, w = _canvas_shape(ppu)
    look = _Look(s, ppu, nch, _col(s.skin, nch), _col(s.lips, nch), _col(s.brows, nch), _col(s.iris, nch),
                 rng.normal(0, 0.006, 2), np.zeros((h, w, nch + 1), np.float32), None, None, detail)
    p0 = neutral_shape(s)
    back_polys, front_polys = _hair_polys(s, p0)
    look.back = _hair_layer(look, back_polys, rng)
    # Neck: a column under the jaw, in the shade of the head.
    nw = s.jaw_width * 0.66
    neck = np.array([[-nw, 0.25], [-nw * 1.12, Y1 + 0.05], [nw * 1.12, Y1 + 0.05], [nw, 0.25]])
    _paint(look.back, [_px(look, neck)], look.skin * 0.9, blur=ppu * 0.004)
    for side in (-1, 1):  # the neck is round: its sides turn away from the light
        _shade(look.back, [_px(look, np.array([[side * nw, 0.3], [side * nw * 1.1, Y1]]))], -0.25, blur=ppu * 0.04, width=ppu * 0.08, closed=False)
    # Ears at the jaw's top ends, a little darker than the face.
    for side in (-1, 1):
        ear = _ellipse((side * (s.jaw_width + 0.012), 0.06), 0.045, 0.11, side * 0.15)
        _paint(look.back, [_px(look, ear)], look.skin * 0.86, blur=ppu * 0.004)
        _shade(look.back, [_px(look, _ellipse((side * (s.jaw_width + 0.018), 0.06), 0.02, 0.06))], -0.25, blur=ppu * 0.012)
    look.front = _hair_layer(look, front_polys, rng)
    look.front_box = _roi(look.front, [_px(look, np.vstack(front_polys))], 4) if front_polys else None
    # Skin is not plastic: faint blotches, the same for the person whatever the scale.
    blotches = np.random.default_rng(s.detail_seed + 2).standard_normal((38, 36)).astype(np.float32)
    look.mottle = 1 + 0.03 * cv2.GaussianBlur(cv2.resize(blotches, (w, h), interpolation=cv2.INTER_CUBIC), (0, 0), ppu * 0.01)
    return look


def _draw_head(cv, look: _Look, p) -> None:
    s, ppu = look.s, look.ppu
    # Shadow the jaw casts on the neck.
    jaw_px = _px(look, p[2:15])
    _shade(cv, [np.vstack([jaw_px, _px(look, p[14:1:-1] + (0, 0.08))])], -0.35, blur=ppu * 0.02)
    outline = _px(look, np.vstack([_spline(p[0:17], 6), _skull(s, p)[1:-1]]))
    _paint(cv, [outline], look.skin, blur=ppu * 0.003)
    # Roundness: darker towards the rim of the face.
    box, m = _mask_in(cv, [outline], blur=ppu * 0.07)
    if box is not None:
        x0, y0, x1, y1 = box
        cv[y0:y1, x0:x1, :-1] *= ((0.6 + 0.4 * np.clip(m * 1.25, 0, 1)) * look.mottle[y0:y1, x0:x1])[..., None]


def _draw_shading(cv, look: _Look, p, tex) -> None:
    """Soft light and shadow that give the face relief (and the Haar features their contrast)."""
    ppu, s = look.ppu, look.s
    px = lambda u: _px(look, u)  # noqa: E731
    brow_y = p[17:27, 1].mean()
    _shade(cv, [px(_ellipse((0, brow_y - 0.17), 0.24, 0.1))], 0.14, blur=ppu * 0.06)  # forehead highlight
    for side, eye, brow in ((-1, p[36:42], p[17:22]), (1, p[42:48], p[22:27])):
        ec = eye.mean(0)
        # eye socket: the darkest broad area of a face under top light
        socket = _ellipse((ec[0] + side * 0.01, (ec[1] + brow[:, 1].mean()) / 2 + 0.012), s.eye_w * 1.45, 0.062)
        _shade(cv, [px(socket)], -0.42, blur=ppu * 0.028)
        _shade(cv, [px(_ellipse(ec + (0, 0.045), s.eye_w * 1.1, 0.02))], -0.12, blur=ppu * 0.02)  # under-eye
        cheek = 0.13 - 0.035 * tex.get("cheek", 0)
        _shade(cv, [px(_ellipse((side * 0.19, cheek), 0.085, 0.06))], 0.12 + 0.1 * tex.get("cheek", 0), blur=ppu * 0.04)
        # side of the nose, under the inner corner of the eye
        nose_side = np.array([[side * 0.03, 0.02], [side * 0.05, 0.1], [side * 0.065, p[31, 1] - 0.02]])
        _shade(cv, [px(nose_side)], -0.2, blur=ppu * 0.014, width=ppu * 0.03, closed=False)
        _shade(cv, [px(_ellipse((side * 0.33, 0.0), 0.07, 0.18))], -0.15, blur=ppu * 0.05)  # temples
    _shade(cv, [px(np.array([[0, p[27, 1] - 0.04], [0, p[30, 1]]]))], 0.16, blur=ppu * 0.012, width=ppu * 0.03, closed=False)
    _shade(cv, [px(_ellipse(p[30] + (0, -0.005), 0.025, 0.02))], 0.14, blur=ppu * 0.012)  # nose tip
    _shade(cv, [px(_ellipse(p[33] + (0, 0.018), 0.05, 0.014))], -0.22, blur=ppu * 0.012)  # under the nose
    _shade(cv, [px(_ellipse(p[57] + (0, 0.03), 0.07, 0.018))], -0.22, blur=ppu * 0.014)  # under the lower lip
    _shade(cv, [px(_ellipse(p[8] + (0, -0.07), 0.07, 0.04))], 0.1, blur=ppu * 0.03)  # chin


def _line(cv, look, pts_u, strength, width=0.006, blur=0.004, amount=-0.45) -> None:
    """A crease: a thin soft dark line (scaled by its texture strength)."""
    if strength > 0.02:
        _shade(cv, [_px(look, _spline(pts_u, 6))], amount * min(strength, 1.3),
               blur=look.ppu * blur, width=max(1.0, look.ppu * width), closed=False)


def _forehead_lines(cv, look: _Look, p, tex) -> None:
    """Raised brows fold the forehead: full-width lines for AU1+2, central ones for AU1 alone."""
    d = look.detail
    brow_y = min(p[17:27, 1].min(), p[19, 1])
    for k, dy in enumerate((0.045, 0.08, 0.115)):
        y = brow_y - dy + 0.005 * d[k]
        xs = np.linspace(-0.22, 0.22, 5)
        _line(cv, look, np.stack([xs, y + 0.012 * (xs / 0.22) ** 2], 1), tex.get("forehead", 0) * (1 - 0.2 * k), width=0.005)
        xs = np.linspace(-0.11, 0.11, 4)
        _line(cv, look, np.stack([xs, y + 0.01 + 0.014 * (xs / 0.11) ** 2], 1), tex.get("forehead_c", 0) * (1 - 0.25 * k), width=0.005)


def _glabella_lines(cv, look: _Look, p, tex) -> None:
    """AU4 bunches the skin between the brows into vertical lines (older faces show them faintly)."""
    g = tex.get("glabella", 0) + 0.15 * look.s.age_lines
    mid = (p[21] + p[22]) / 2
    for side in (-1, 1):
        x = mid[0] + side * (0.014 + 0.003 * look.detail[3])
        _line(cv, look, [(x - side * 0.002, mid[1] - 0.02), (x, mid[1] + 0.015), (x + side * 0.004, mid[1] + 0.045)], g, width=0.006)


def _nose_wrinkles(cv, look: _Look, p, tex) -> None:
    """AU9: horizontal folds across the bridge and oblique ones down its sides."""
    nz = tex.get("nose", 0)
    for k in range(3):
        y = p[27, 1] + 0.012 + 0.018 * k
        _line(cv, look, [(-0.03, y + 0.006), (0, y), (0.03, y + 0.006)], nz * 0.9, width=0.005)
    for side in (-1, 1):
        _line(cv, look, [(side * 0.035, p[28, 1]), (side * 0.05, p[29, 1] + 0.01)], nz * 0.7, width=0.005)


def _nasolabial_folds(cv, look: _Look, p, tex, side_active: int) -> None:
    """From beside the nostril wing to beyond the lip corner; deepened by AU9/10/12 (and on
    the pulled side by contempt), with the cheek bulging lighter over it."""
    for side, wing, corner in ((-1, p[31], p[48]), (1, p[35], p[54])):
        n = tex.get("naso", 0) + 0.25 * look.s.age_lines + (0.4 * tex.get("dimple", 0) if side == side_active else 0)
        start = wing + (side * 0.022, -0.012)
        mid = (wing + corner) / 2 + (side * 0.04, 0.0)
        end = corner + (side * 0.03, 0.03)
        _line(cv, look, [start, mid, end], n, width=0.008, blur=0.006)
        bulge = _spline([start + (side * 0.03, 0.01), mid + (side * 0.035, 0), end + (side * 0.025, -0.01)], 6)
        _shade(cv, [_px(look, bulge)], 0.12 * min(n, 1), blur=look.ppu * 0.02, width=look.ppu * 0.03, closed=False)


def _eye_wrinkles(cv, look: _Look, p, tex) -> None:
    """AU6: crow's feet fanning from the outer eye corners, and the raised lower-lid bulge."""
    age = look.s.age_lines
    for side, corner, lower in ((-1, p[36], p[[39, 40, 41, 36]]), (1, p[45], p[[42, 47, 46, 45]])):
        for ang in (-0.45, 0.0, 0.45):
            a = ang + 0.1 * look.detail[5]
            start = corner + (side * 0.02, 0)
            _line(cv, look, [start, start + (side * 0.04 * np.cos(a), 0.04 * np.sin(a))], (tex.get("crow", 0) + 0.2 * age) * 0.8, width=0.004)
        _line(cv, look, lower + (0, 0.022), tex.get("bags", 0) + 0.2 * age, width=0.006, blur=0.005, amount=-0.3)


def _chin_wrinkles(cv, look: _Look, p, tex) -> None:
    """AU17: the chin boss dimples (orange-peel skin) and the fold under the lower lip deepens."""
    ch = tex.get("chin", 0)
    _line(cv, look, [p[59] + (0, 0.03), p[57] + (0, 0.035), p[55] + (0, 0.03)], ch, width=0.008, blur=0.008)
    d = look.detail
    for k in range(4):
        c = p[8] + (0.05 * d[10 + k], -0.06 + 0.02 * d[20 + k])
        _shade(cv, [_px(look, _ellipse(c, 0.012, 0.008))], -0.25 * ch, blur=look.ppu * 0.006)


def _dimple(cv, look: _Look, p, tex, side: int) -> None:
    """AU14 (contempt): a short curved crease beside the tightened lip corner."""
    corner = p[54] if side > 0 else p[48]
    pts = [corner + (side * 0.012, -0.022), corner + (side * 0.022, -0.002), corner + (side * 0.016, 0.018)]
    _line(cv, look, pts, tex.get("dimple", 0) * 1.1, width=0.008)


def _draw_wrinkles(cv, look: _Look, p, tex, side: int) -> None:
    _forehead_lines(cv, look, p, tex)
    _glabella_lines(cv, look, p, tex)
    _nose_wrinkles(cv, look, p, tex)
    _nasolabial_folds(cv, look, p, tex, side)
    _eye_wrinkles(cv, look, p, tex)
    _chin_wrinkles(cv, look, p, tex)
    _dimple(cv, look, p, tex, side)


def _draw_brows(cv, look: _Look, p) -> None:
    s = look.s
    for pts in (p[17:22], p[26:21:-1]):  # outer -> inner
        upper = _spline(pts, 6)
        t = np.linspace(0, 1, len(upper))[:, None]
        lower = upper + np.hstack([np.zeros_like(t), s.brow_thick * (0.45 + 0.55 * t)])  # thicker at the inner head
        poly = _px(look, np.vstack([upper, lower[::-1]]))
        _paint(cv, [poly], look.brows, alpha=0.9, blur=look.ppu * 0.004)


def _eye_outline(eye6) -> tuple[np.ndarray, np.ndarray]:
    """Upper and lower lid curves of one eye, both from the outer to the inner corner
    (iBUG order for the image-left eye; the image-right eye is passed reordered)."""
    upper = _spline(eye6[[0, 1, 2, 3]], 8)
    lower = _spline(eye6[[0, 5, 4, 3]], 8)
    return upper, lower


def _draw_eye(cv, look: _Look, eye6) -> None:
    ppu = look.ppu
    upper, lower = _eye_outline(eye6)
    # lid crease and the lid itself: a darker band above the lash line
    lift = np.array([0.35, 1.0, 1.0, 0.4])[:, None] * (0, -0.024)
    crease = _spline(eye6[[0, 1, 2, 3]] + lift, 8)
    _shade(cv, [_px(look, crease)], -0.28, blur=ppu * 0.004, width=max(1.0, ppu * 0.006), closed=False)
    _shade(cv, [_px(look, np.vstack([crease, upper[::-1]]))], -0.12, blur=ppu * 0.006)
    opening = np.vstack([upper, lower[::-1]])
    height = (lower[:, 1] - upper[:, 1]).max()
    if height > 0.008:
        box, m = _mask_in(cv, [_px(look, opening)], blur=ppu * 0.0015)
        if box is not None:
            _draw_eyeball(cv, look, eye6, box, m, upper)
    # lash line on the upper lid, a fainter line on the lower
    _paint(cv, [_px(look, upper)], look.brows * 0.6, alpha=0.9, blur=ppu * 0.002, width=max(1.0, ppu * 0.011), closed=False)
    _shade(cv, [_px(look, lower)], -0.3, blur=ppu * 0.003, width=max(1.0, ppu * 0.004), closed=False)


def _draw_eyeball(cv, look: _Look, eye6, box, m, upper) -> None:
    """Sclera, iris, pupil and catch light, clipped to the lid opening."""
    ppu = look.ppu
    x0, y0, x1, y1 = box
    roi = cv[y0:y1, x0:x1]
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    centre = (eye6[0] + eye6[3]) / 2 + look.gaze
    c = _px(look, centre)
    r = 0.39 * look.s.eye_w * ppu
    d = np.hypot(xx - c[0], yy - c[1])
    sclera = _col((200, 205, 212), look.nch) * (0.85 + 0.15 * np.clip(1 - np.abs(xx - c[0]) / (2.2 * r), 0, 1))[..., None]
    iris = np.clip(r + 0.5 - d, 0, 1)
    limbus = 1 - 0.45 * np.clip((d - 0.7 * r) / (0.3 * r), 0, 1)  # darker rim of the iris
    pupil = np.clip(0.42 * r + 0.5 - d, 0, 1)
    colour = sclera * (1 - iris)[..., None] + (look.iris * limbus[..., None]) * iris[..., None]
    colour = colour * (1 - pupil)[..., None] + 8 * pupil[..., None]
    glint = np.clip(0.16 * r + 0.5 - np.hypot(xx - c[0] + 0.35 * r, yy - c[1] + 0.35 * r), 0, 1)
    colour = colour + (235 - colour) * (0.85 * glint)[..., None]
    # the upper lid shades the top of the eyeball
    lid_y = np.interp(xx, *_sorted_xy(_px(look, upper)))
    colour = colour * (1 - 0.35 * np.exp(-np.clip(yy - lid_y, 0, None) / (0.012 * ppu)))[..., None]
    roi += (np.concatenate([colour, np.ones_like(m)[..., None]], -1) - roi) * m[..., None]


def _sorted_xy(curve):
    order = np.argsort(curve[:, 0])
    return curve[order, 0], curve[order, 1]


def _draw_nose(cv, look: _Look, p) -> None:
    ppu = look.ppu
    for side, wing, mid in ((-1, p[31], p[32]), (1, p[35], p[34])):
        c = (wing + 2 * mid + p[33]) / 4 + (0, -0.004)
        ang = np.arctan2(p[33, 1] - wing[1], p[33, 0] - wing[0])
        _shade(cv, [_px(look, _ellipse(c, 0.5 * abs(p[33, 0] - wing[0]), 0.011, ang))], -0.6, blur=ppu * 0.005)
        # the crease round the nostril wing
        arc = _ellipse(wing + (side * 0.004, -0.018), 0.022, 0.024, 0, 24)
        keep = (arc[:, 0] - wing[0]) * side > -0.004
        _shade(cv, [_px(look, arc[keep][np.argsort(arc[keep][:, 1])])], -0.3, blur=ppu * 0.005, width=max(1.0, ppu * 0.006), closed=False)


def _draw_mouth(cv, look: _Look, p, tex) -> None:
    ppu = look.ppu
    up_in = _spline(p[60:65], 6)  # left corner -> right corner
    low_in = _spline(p[[64, 65, 66, 67, 60]], 6)  # right -> left
    upper = np.vstack([_spline(p[48:55], 6), up_in[::-1]])  # outer contour, back along the inner one
    lower = np.vstack([_spline(p[[54, 55, 56, 57, 58, 59, 48]], 6), low_in[::-1]])
    inner = np.vstack([up_in, low_in[1:-1]])
    xs = np.linspace(p[60, 0], p[64, 0], 20)
    gap = (np.interp(xs, *_sorted_xy(low_in)) - np.interp(xs, *_sorted_xy(up_in))).max()  # how far the lips part
    if gap > 0.004:
        _draw_mouth_inside(cv, look, p, inner, up_in, low_in, gap, tex)
    _paint(cv, [_px(look, upper)], look.lips * 0.82, blur=ppu * 0.004)
    _paint(cv, [_px(look, lower)], look.lips, blur=ppu * 0.005)
    _shade(cv, [_px(look, _ellipse(p[57] + (0, -0.45 * (p[57, 1] - p[66, 1])), 0.035, 0.008))], 0.15, blur=ppu * 0.008)  # lower lip sheen
    # the line between the lips and the shadowed corners
    _shade(cv, [_px(look, up_in)], -0.6, blur=ppu * 0.003, width=max(1.0, ppu * 0.006), closed=False)
    for corner in (p[60], p[64]):
        _shade(cv, [_px(look, _ellipse(corner, 0.01, 0.007))], -0.45, blur=ppu * 0.005)


def _draw_mouth_inside(cv, look: _Look, p, inner, up_in, low_in, gap, tex) -> None:
    """Dark mouth cavity, upper teeth below the upper lip, a hint of lower teeth when wide."""
    ppu = look.ppu
    box, m = _mask_in(cv, [_px(look, inner)], blur=ppu * 0.002)
    if box is None:
        return
    x0, y0, x1, y1 = box
    roi = cv[y0:y1, x0:x1]
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    dark = _col((30, 30, 55), look.nch)
    colour = np.broadcast_to(dark, roi.shape[:2] + (look.nch,)).copy()
    teeth = tex.get("teeth", 0)
    if teeth > 0.05:
        top = np.interp(xx, *_sorted_xy(_px(look, up_in)))
        bottom = np.interp(xx, *_sorted_xy(_px(look, low_in)))
        cx = _px(look, (p[62] + p[66]) / 2)[0]
        half = abs(_px(look, p[64])[0] - _px(look, p[60])[0]) / 2 + 1e-3
        band = 0.034 * ppu  # visible height of the upper incisors
        upper_t = np.clip((top + band - yy) / (0.004 * ppu + 1), 0, 1)
        lower_t = np.clip((yy - (bottom - 0.012 * ppu)) / (0.004 * ppu + 1), 0, 1) * 0.6 * (gap > 0.03)
        t = np.clip(upper_t + lower_t, 0, 1) * min(1.0, teeth * 1.5)
        # the corners of the mouth are in shadow; faint gaps between teeth
        fall = np.clip(1.15 - (np.abs(xx - cx) / half) ** 2, 0.25, 1)
        gaps = 1 - 0.18 * (np.cos(2 * np.pi * (xx - cx) / (0.028 * ppu)) > 0.9)
        tooth = _col((205, 215, 222), look.nch) * (fall * gaps)[..., None]
        colour = colour * (1 - t)[..., None] + tooth * t[..., None]
        colour *= (1 - 0.35 * np.exp(-np.clip(yy - top, 0, None) / (0.006 * ppu)))[..., None]  # lip shadow on teeth
    roi += (np.concatenate([colour, np.ones_like(m)[..., None]], -1) - roi) * m[..., None]


def _draw_face(look: _Look, p, tex, side: int = 1) -> np.ndarray:
    """The whole face for one frame on a fresh canvas (premultiplied colour + alpha); `side`
    is the lip corner a one-sided expression pulls."""
    cv = look.back.copy()
    _draw_head(cv, look, p)
    _draw_shading(cv, look, p, tex)
    _draw_wrinkles(cv, look, p, tex, side)
    _draw_brows(cv, look, p)
    _draw_eye(cv, look, p[36:42])
    _draw_eye(cv, look, p[[45, 44, 43, 42, 47, 46]])  # reordered: outer, upper, inner, lower
    _draw_nose(cv, look, p)
    _draw_mouth(cv, look, p, tex)
    if look.front_box is not None:
        x0, y0, x1, y1 = look.front_box
        roi, hair = cv[y0:y1, x0:x1], look.front[y0:y1, x0:x1]
        roi *= 1 - hair[..., -1:]
        roi += hair
    return cv


# --------------------------------------------------------------------------------------------
# The scene: background, body, pose, light, camera
# --------------------------------------------------------------------------------------------


@dataclass
class _Scene:
    size: tuple[int, int]
    nch: int
    background: np.ndarray  # (H, W, C) float32
    body: np.ndarray  # premultiplied (H, W, C+1), drawn over the face (it hides the neck's end)
    gain: np.ndarray  # (H, W, 1) light gradient * brightness * contrast
    offset: float
    plate: np.ndarray  # background and body, lit: the frame wherever the face is not
    noise: float
    blur: float
    poses: list[np.ndarray]  # per frame 2x3 canvas -> frame


def _background(s: Subject, size, nch, rng) -> np.ndarray:
    w, h = size
    a, b = _col(s.bg_colors[0], nch), _col(s.bg_colors[1], nch)
    if s.background == "gradient":
        ang = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        t = ((xx - w / 2) * np.cos(ang) + (yy - h / 2) * np.sin(ang)) / max(w, h) + 0.5
        return a + (b - a) * np.clip(t, 0, 1)[..., None]
    # soft texture: a wall or curtain out of focus
    coarse = rng.standard_normal((max(2, h // 40), max(2, w // 40))).astype(np.float32)
    tex = cv2.GaussianBlur(cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC), (0, 0), 6)
    tex = (tex - tex.min()) / (np.ptp(tex) + 1e-6)
    return a + (b - a) * tex[..., None]


def _body(s: Subject, size, nch, origin, ppu, rng):
    """Shoulders and a shirt below the neck, with a round neckline."""
    w, h = size
    cx, cy = origin
    top = cy + 0.7 * ppu
    sw = (1.15 + 0.2 * rng.random()) * ppu
    xs = np.linspace(-1, 1, 41)
    edge = top + ppu * (0.32 * np.abs(xs) ** 1.6) + ppu * 0.08 * np.exp(-(xs / 0.16) ** 2)
    poly = np.vstack([np.stack([cx + xs * sw, edge], 1), [[cx + sw, h + 10], [cx - sw, h + 10], [cx - sw * 1.4, h + 10]]])
    poly = np.vstack([[[cx - sw * 1.4, top + 0.6 * ppu]], poly])
    layer = np.zeros((h, w, nch + 1), np.float32)
    _paint(layer, [poly], _col(s.shirt, nch), blur=1.0)
    # a fold shadow at the neckline
    _shade(layer, [np.stack([cx + xs * sw * 0.3, top + ppu * 0.1 + ppu * 0.08 * np.exp(-(xs * 0.3 / 0.16) ** 2)], 1)], -0.3, blur=ppu * 0.02, width=ppu * 0.02, closed=False)
    return layer


def _pose_track(s: Subject, size, n, ppu, rng) -> tuple[tuple[float, float], list[np.ndarray]]:
    """Where the face origin sits, and a slowly drifting affine pose per frame."""
    w, h = size
    # the face (hair top to chin) must stay inside the frame
    lo_x, hi_x = 0.5 * ppu, w - 0.5 * ppu
    lo_y, hi_y = 0.5 * ppu, h - 0.62 * ppu
    px = np.clip(s.pos[0] + rng.normal(0, 0.03), 0, 1)
    py = np.clip(s.pos[1] + rng.normal(0, 0.03), 0, 1)
    ox = lo_x + (hi_x - lo_x) * px if hi_x > lo_x else w / 2
    oy = lo_y + (hi_y - lo_y) * py if hi_y > lo_y else h / 2
    roll0 = float(np.clip(s.roll + rng.normal(0, 1.0), -8, 8))
    t = np.linspace(0, 1, n)
    drift = rng.normal(0, 1.6, 2) * size[1] / 490  # a few pixels over the sequence
    wobble = rng.normal(0, 0.3, (n, 2)).cumsum(0) * 0.5
    droll = rng.normal(0, 0.6)
    c_canvas = (-X0 * ppu, -Y0 * ppu)
    poses = []
    for i in range(n):
        ang = np.deg2rad(float(np.clip(roll0 + droll * t[i], -8, 8)))
        ca, sa = np.cos(ang), np.sin(ang)
        tx, ty = ox + drift[0] * t[i] + wobble[i, 0], oy + drift[1] * t[i] + wobble[i, 1]
        # rotate about the face origin, then move it to (tx, ty)
        m = np.array([[ca, -sa, tx - ca * c_canvas[0] + sa * c_canvas[1]], [sa, ca, ty - sa * c_canvas[0] - ca * c_canvas[1]]])
        poses.append(m)
    return (ox, oy), poses


def _make_scene(s: Subject, size, nch, n, rng, studio=None) -> tuple[_Scene, float]:
    """The frame around the face. `studio` (training.synthesis.studio): its backdrop replaces the
    subject's own (drawn all the same, so the rest of the draws are what they were)."""
    w, h = size
    ppu = s.scale * h * _u(rng, 0.97, 1.03)
    origin, poses = _pose_track(s, size, n, ppu, rng)
    bg = _background(s, size, nch, rng).astype(np.float32)
    if studio is not None and studio.backdrop.kind != "wall":
        from training.synthesis.studio import backdrop_image

        back = backdrop_image(studio.backdrop, h, w)
        bg = (back if nch == 3 else cv2.cvtColor(back, cv2.COLOR_BGR2GRAY)[..., None]).astype(np.float32)
    body = _body(s, size, nch, origin, ppu, rng)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ang = s.light_angle + rng.normal(0, 0.1)
    ramp = ((xx - w / 2) * np.cos(ang) + (yy - h / 2) * np.sin(ang)) / (0.5 * max(w, h))
    c = s.contrast * _u(rng, 0.96, 1.04)
    gain = ((1 + s.light_grad * ramp) * s.brightness * _u(rng, 0.95, 1.05) * c).astype(np.float32)[..., None]
    offset = 128 * (1 - c)  # contrast pivots on mid grey
    plate = (bg * (1 - body[..., -1:]) + body[..., :-1]) * gain + offset
    noise = float(np.clip(s.noise + rng.normal(0, 0.4), 1, 6))
    blur = s.blur * min(w / 640, h / 490) ** 0.5
    return _Scene(size, nch, bg, body, gain, offset, plate, noise, blur, poses), ppu


def _compose(scene: _Scene, canvas: np.ndarray, m: np.ndarray, rng) -> np.ndarray:
    """Face canvas warped into the frame between background and body, lit, then the camera:
    blur, sensor noise, 8-bit quantisation. Only the face's bounding box is recomposed."""
    w, h = scene.size
    frame = scene.plate.copy()
    ch, cw = canvas.shape[:2]
    corners = np.array([[0, 0, 1], [cw, 0, 1], [0, ch, 1], [cw, ch, 1]], np.float64) @ m.T
    x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int) + 1, (w, h))
    if x1 > x0 and y1 > y0:
        mm = m.copy()
        mm[:, 2] -= (x0, y0)
        face = cv2.warpAffine(canvas, mm, (int(x1 - x0), int(y1 - y0)), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        face = face.reshape(face.shape[:2] + (-1,))
        sl = (slice(y0, y1), slice(x0, x1))
        body = scene.body[sl]
        x = scene.background[sl] * (1 - face[..., -1:]) + face[..., :-1]
        x = x * (1 - body[..., -1:]) + body[..., :-1]
        frame[sl] = x * scene.gain[sl] + scene.offset
    if scene.blur > 0.3:
        frame = cv2.GaussianBlur(frame, (0, 0), scene.blur).reshape(frame.shape)
    noise = np.empty_like(frame)
    cv2.setRNGSeed(int(rng.integers(2**31)))  # cv2's generator: 4x faster than numpy's normal here
    cv2.randn(noise, (0.0,) * scene.nch, (scene.noise,) * scene.nch)  # a scalar would only reach channel 0
    frame += noise
    out = np.clip(frame + 0.5, 0, 255).astype(np.uint8)
    return out[..., 0] if scene.nch == 1 else out


# --------------------------------------------------------------------------------------------
# Sequences
# --------------------------------------------------------------------------------------------


def _ease(n_frames: int, onset: int) -> np.ndarray:
    """0 for the `onset` neutral frames, then a smooth (cosine) rise to 1 at the last frame."""
    t = np.arange(n_frames, dtype=np.float64)
    s = np.clip((t - onset + 1) / max(1, n_frames - onset), 0, 1)
    return 0.5 - 0.5 * np.cos(np.pi * s)


def _blinks(n_frames: int, curve: np.ndarray, rng) -> np.ndarray:
    """Lid closure per frame: sometimes a blink, only where the face is still (near) neutral."""
    closed = np.zeros(n_frames)
    calm = np.flatnonzero((curve < 0.05) & (np.arange(n_frames) > 0) & (np.arange(n_frames) < n_frames - 1))
    if len(calm) and rng.random() < 0.35:
        i = int(rng.choice(calm))
        closed[i] = _u(rng, 0.7, 1.0)
        if i + 1 < n_frames - 1 and curve[i + 1] < 0.2:
            closed[i + 1] = closed[i] * 0.4
    return closed


def _film(frames: list[np.ndarray], studio) -> list[np.ndarray]:
    """The frames through the studio camera's tone curve, vignette and noise (none without a studio)."""
    if studio is None:
        return frames
    from training.synthesis.studio import camera_frame

    return [camera_frame(f, studio.camera, i) for i, f in enumerate(frames)]


def _render(s: Subject, expr: Expression, n_frames: int, rng, size, color: bool, onset: int | None, studio=None):
    if n_frames < 2:
        raise ValueError("a sequence needs at least 2 frames (neutral first, peak last)")
    w, h = size
    if onset is None:
        onset = int(rng.integers(1, min(4, n_frames - 1) + 1))
    onset = int(np.clip(onset, 1, n_frames - 1))
    nch = 3 if color else 1
    scene, ppu = _make_scene(s, (w, h), nch, n_frames, rng, studio)
    look = _make_look(s, ppu, nch, rng)
    curve = _ease(n_frames, onset)
    closed = _blinks(n_frames, np.zeros(n_frames) if expr.neutral else curve, rng)
    p0 = neutral_shape(s)
    jitter = rng.normal(0, 0.0012, (n_frames, 68, 2)).cumsum(0) * 0.5  # tiny natural motion
    frames, marks = [], []
    for i in range(n_frames):
        p = _blink(p0 + curve[i] * expr.disp + jitter[i], closed[i])
        tex = {k: v * curve[i] for k, v in expr.tex.items()}
        canvas = _draw_face(look, p, tex, expr.side)
        m = scene.poses[i]
        frames.append(_compose(scene, canvas, m, rng))
        pts = _px(look, p)
        marks.append((pts @ m[:, :2].T + m[:, 2]).astype(np.float32))
    return _film(frames, studio), marks


def render_sequence(
    subject: Subject,
    emotion: str,
    n_frames: int,
    rng: np.random.Generator,
    size: tuple[int, int] = (640, 490),
    color: bool = False,
    onset_frames: int | None = None,
    studio=None,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """One CK+-style sequence: frame 0 neutral, the expression peaking at the last frame.

    Returns frames (uint8 (H, W) gray or (H, W, 3) BGR) and landmarks (float32 (68, 2) x, y
    pixels) per frame. `onset_frames` is how many neutral frames start it (random 1-4 if None).
    `emotion` is one of CLASSES or "neutral" (only drift, tiny motion and maybe a blink).
    `studio` (training.synthesis.studio.Studio): its backdrop and camera instead of the subject's."""
    if emotion not in _EMOTIONS:
        raise ValueError(f"unknown emotion {emotion!r}; expected one of {CLASSES + ('neutral',)}")
    expr = _expression(subject, emotion, rng)
    expr.neutral = emotion == "neutral"
    return _render(subject, expr, n_frames, rng, size, color, onset_frames, studio)


# --------------------------------------------------------------------------------------------
# Performances: a drawn face that talks, turns, blinks and shows an expression as it comes and goes
# (the tracks come from training.synthesis.motion, shared with the photo-real renderer)
# --------------------------------------------------------------------------------------------

# Speech mouth shapes on the 68 points, as _AU entries (face units at full strength). The jaw reuses
# AU26's pattern (lower lip, chin and jaw down) and the parting lips AU25's.
_SPEECH = {
    "round": [((48, 54), -0.022, 0), ((60, 64), -0.02, 0), ((49, 53), -0.01, -0.004), ((59, 55), -0.01, 0.004),
              ((50, 51, 52), 0, -0.005), ((56, 57, 58), 0, 0.005)],
}
JAW_SPEECH = 0.75  # AU26 at jaw = 1: a wide "ah" drops the chin ~0.045 face units (~0.14 inter-eye distances)


def _speech_disp(jaw: float, spread: float, press: float) -> np.ndarray:
    """(68, 2) face units: the mouth shape of one speech frame (motion.speech's units)."""
    d = jaw * JAW_SPEECH * _au_disp("AU26") + min(1.0, 3 * jaw) * (1 - press) * 0.6 * _au_disp("AU25")
    d += max(spread, 0.0) * 0.55 * _au_disp("AU20")
    if spread < 0:
        for idx, dx, dy in _SPEECH["round"]:
            idx = list(idx)
            d[idx, 0] += -spread * _SIDE[idx] * dx
            d[idx, 1] += -spread * dy
    return d + press * 0.5 * _au_disp("AU23")


def _depth(p0: np.ndarray) -> np.ndarray:
    """(68,) face units towards the camera: a smooth dome over the face and the nose standing out."""
    c = np.array([0.0, 0.5 * p0[51, 1]])
    z = 0.3 * np.exp(-(((p0[:, 0] - c[0]) / 0.4) ** 2) - ((p0[:, 1] - c[1]) / 0.55) ** 2)
    return z + 0.12 * np.exp(-((np.linalg.norm(p0 - p0[30], axis=1) / 0.08) ** 2))


def _turn(p: np.ndarray, depth: np.ndarray, yaw: float, pitch: float, c: np.ndarray) -> np.ndarray:
    """The points of a frontal face with the head turned by yaw (+ to the image right) and pitched by pitch (+ down)."""
    a, b = np.radians(yaw), np.radians(pitch)
    u, v = p[:, 0] - c[0], p[:, 1] - c[1]
    u, z = u * np.cos(a) + depth * np.sin(a), depth * np.cos(a) - u * np.sin(a)
    v = v * np.cos(b) + z * np.sin(b)
    return np.stack([u + c[0], v + c[1]], 1)


def render_performance(subject: Subject, emotion: str, perf, rng, size=(640, 360), color: bool = False, studio=None):
    """Frames and landmarks of a drawn face performing `perf` (a motion.Performance): `emotion` shown
    at perf.intensity, speech moving the jaw and lips over it, the head turning, nodding, drifting,
    blinks. Returns (frames, landmarks) as render_sequence does."""
    if emotion not in _EMOTIONS:
        raise ValueError(f"unknown emotion {emotion!r}; expected one of {CLASSES + ('neutral',)}")
    n = len(perf)
    nch = 3 if color else 1
    scene, ppu = _make_scene(subject, size, nch, n, rng, studio)
    look = _make_look(subject, ppu, nch, rng)
    expr = _expression(subject, emotion, rng)
    p0 = neutral_shape(subject)
    depth, centre = _depth(p0), np.array([0.0, 0.5 * p0[51, 1]])
    origin = _px(look, (0.0, 0.0)) @ scene.poses[0][:, :2].T + scene.poses[0][:, 2]  # the face origin in the frame
    frames, marks = [], []
    for i in range(n):
        c = float(perf.intensity[i]) if emotion != "neutral" else 0.0
        p = p0 + c * expr.disp + _speech_disp(float(perf.jaw[i]), float(perf.spread[i]), float(perf.press[i]))
        p = _turn(_blink(p, float(perf.blink[i])), depth, float(perf.yaw[i]), float(perf.pitch[i]), centre)
        canvas = _draw_face(look, p, {k: v * c for k, v in expr.tex.items()}, expr.side)
        head = cv2.getRotationMatrix2D((float(origin[0]), float(origin[1])), float(perf.roll[i]), float(perf.scale[i]))
        head[:, 2] += perf.shift[i] * ppu
        m = head @ np.vstack([scene.poses[0], [0, 0, 1]])
        frames.append(_compose(scene, canvas, m, rng))
        marks.append((_px(look, p) @ m[:, :2].T + m[:, 2]).astype(np.float32))
    return _film(frames, studio), marks


# --------------------------------------------------------------------------------------------
# The CK+ tree
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SequencePlan:
    number: int  # 1, 2, ... within the subject
    emotion: str | None  # None: unlabelled (a non-prototypic mix)
    n_frames: int
    onset: int  # neutral frames at the start
    empty_emotion_dir: bool = False  # unlabelled: an empty Emotion folder rather than none


@dataclass(frozen=True)
class SubjectPlan:
    index: int
    sid: int  # CK+ subject number, S%03d
    color: bool
    subject: Subject
    sequences: tuple[SequencePlan, ...]


def _gap(seed: int, i: int) -> int:
    return int(np.random.default_rng([seed, i]).integers(1, 8))


def subject_ids(seed: int, n: int) -> list[int]:
    """Increasing, non-contiguous CK+-like numbers from 5; subject i's number only depends on
    subjects 0..i (mean gap 4, so ~120 subjects fit in S005..S999, like CK+)."""
    return [4 + v for v in np.cumsum([_gap(seed, i) for i in range(n)]).tolist()]


def _seq_length(rng) -> int:
    return int(rng.integers(4, 8)) if rng.random() < 0.1 else int(rng.integers(8, 25))


def plan_subject(seed: int, index: int, sid: int | None = None) -> SubjectPlan:
    """Who subject `index` is and which sequences it gets (no rendering)."""
    rng = np.random.default_rng([seed, index])
    rng.integers(1, 8)  # the id gap, drawn first (see _gap)
    subject = make_subject(rng)
    color = bool(rng.random() < 0.2)
    kinds: list[str | None] = [str(c) for c in rng.permutation(CLASSES)]
    if rng.random() < 0.25:
        kinds.insert(int(rng.integers(0, len(kinds) + 1)), None)
    seqs = []
    for k, emotion in enumerate(kinds):
        n = _seq_length(rng)
        onset = int(rng.integers(1, min(4, n - 2) + 1))
        seqs.append(SequencePlan(k + 1, emotion, n, onset, bool(emotion is None and rng.random() < 0.5)))
    sid = sid if sid is not None else subject_ids(seed, index + 1)[-1]
    return SubjectPlan(index, sid, color, subject, tuple(seqs))


def _fmt(v: float) -> str:
    return f"   {v:.7e}"


def _studio(with_studio: bool, backgrounds: tuple, seed: int, index: int, number: int):
    """The studio of a subject's sequence or video (training.synthesis.studio.draw_for), or None: the
    subject's own backdrop."""
    if not with_studio:
        return None
    from training.synthesis import studio

    return studio.draw_for([seed, index, number], backgrounds)


def _write_sequence(out: Path, plan: SubjectPlan, seq: SequencePlan, seed: int, size, studio=None) -> int:
    rng = np.random.default_rng([seed, plan.index, seq.number])
    s = plan.subject
    if seq.emotion is None:
        a, b = rng.choice(CLASSES, 2, replace=False)
        expr = _blend(_expression(s, str(a), rng), _expression(s, str(b), rng), rng)
    else:
        expr = _expression(s, seq.emotion, rng)
    frames, marks = _render(s, expr, seq.n_frames, rng, size, plan.color, seq.onset, studio)
    subj, num = f"S{plan.sid:03d}", f"{seq.number:03d}"
    img_dir = out / "cohn-kanade-images" / subj / num
    lm_dir = out / "Landmarks" / subj / num
    img_dir.mkdir(parents=True, exist_ok=True)
    lm_dir.mkdir(parents=True, exist_ok=True)
    for i, (frame, pts) in enumerate(zip(frames, marks), start=1):
        stem = f"{subj}_{num}_{i:08d}"
        cv2.imwrite(str(img_dir / f"{stem}.png"), frame)
        (lm_dir / f"{stem}_landmarks.txt").write_text("".join(f"{_fmt(x)}{_fmt(y)}\n" for x, y in pts.astype(np.float64)))
    emo_dir = out / "Emotion" / subj / num
    if seq.emotion is not None:
        emo_dir.mkdir(parents=True, exist_ok=True)
        (emo_dir / f"{subj}_{num}_{seq.n_frames:08d}_emotion.txt").write_text(f"{_fmt(float(CODES[seq.emotion]))}\n")
    elif seq.empty_emotion_dir:
        emo_dir.mkdir(parents=True, exist_ok=True)
    return seq.n_frames


def _write_subject(args) -> tuple[int, dict]:
    out, seed, index, sid, size, threads, with_studio, backgrounds = args
    if threads is not None:
        cv2.setNumThreads(threads)
    plan = plan_subject(seed, index, sid)
    frames = sum(_write_sequence(Path(out), plan, seq, seed, size, _studio(with_studio, backgrounds, seed, index, seq.number))
                 for seq in plan.sequences)
    labels = [seq.emotion for seq in plan.sequences]
    return index, {"sid": sid, "frames": frames, "labels": labels, "color": plan.color}


def write_dataset(out_dir, subjects: int = 40, seed: int = 0, size=(640, 490), progress: bool = True, workers: int | None = None,
                  studio: bool = False, backgrounds=()) -> dict:
    """Write `subjects` synthetic subjects in the CK+ tree under out_dir; returns a summary.

    Subjects are rendered in parallel (`workers` processes, default: all cores); the files
    are the same whatever the number of workers. `studio`: each sequence before a backdrop and
    through a camera of its own (training.synthesis.studio.draw, `backgrounds` among the backdrops)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    size = (int(size[0]), int(size[1]))
    ids = subject_ids(seed, subjects)
    workers = workers or min(os.cpu_count() or 1, subjects)
    jobs = [(str(out), seed, i, ids[i], size, 1 if workers > 1 else None, studio, tuple(backgrounds)) for i in range(subjects)]
    results = {}

    def done(i, r):
        results[i] = r
        if progress:
            print(f"synth: S{r['sid']:03d} {len(r['labels'])} sequences, {r['frames']} frames ({len(results)}/{subjects})", file=sys.stderr)

    if workers > 1:
        # spawn, not fork: a fork after OpenCV/torch threads have run can hang the child
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            for i, r in pool.map(_write_subject, jobs):
                done(i, r)
    else:
        for job in jobs:
            done(*_write_subject(job))
    per_class = {c: 0 for c in CLASSES}
    for r in results.values():
        for lab in r["labels"]:
            if lab is not None:
                per_class[lab] += 1
    labels = [lab for r in results.values() for lab in r["labels"]]
    return {
        "subjects": subjects,
        "sequences": len(labels),
        "labelled": sum(lab is not None for lab in labels),
        "unlabelled": sum(lab is None for lab in labels),
        "frames": sum(r["frames"] for r in results.values()),
        "color_subjects": sum(r["color"] for r in results.values()),
        "per_class": per_class,
        "seed": seed,
        "size": list(size),
        "studio": bool(studio),
    }


def _write_talking_subject(args) -> tuple[int, list[str]]:
    out, seed, index, sid, calm, seconds, threads, with_studio, backgrounds = args
    if threads is not None:
        cv2.setNumThreads(threads)
    from training.synthesis import motion
    from training.video import write_video

    plan = plan_subject(seed, index, sid)
    written = []
    for k, emotion in enumerate(motion.talking_kinds(CLASSES, calm), start=1):
        rng = np.random.default_rng([seed, index, 1000 + k])
        perf = motion.talking_performance(emotion, rng, seconds)
        frames, _ = render_performance(plan.subject, emotion, perf, rng, size=(640, 360), color=plan.color,
                                       studio=_studio(with_studio, backgrounds, seed, index, 1000 + k))
        write_video(Path(out) / emotion / f"S{sid:03d}_talk{k:02d}.mp4", frames, fps=motion.TALK_FPS)
        written.append(emotion)
    return index, written


def write_talking_dataset(out_dir, subjects: int = 40, seed: int = 0, calm: int = 2, seconds=(2.0, 3.0),
                          progress: bool = True, workers: int | None = None, studio: bool = False, backgrounds=()) -> dict:
    """Class folders of talking drawn faces under out_dir (`<class>/S<id>_talkNN.mp4`, H.264, 640x360,
    30 fps): per subject `calm` videos of calm talking (neutral) and one of talking while holding each
    of the 7 expressions (training.synthesis.motion). The subjects are write_dataset's (same ids,
    same faces); the files are the same whatever the number of workers. `studio`, `backgrounds`: as write_dataset."""
    ids = subject_ids(seed, subjects)
    workers = workers or min(os.cpu_count() or 1, subjects)
    jobs = [(str(out_dir), seed, i, ids[i], int(calm), tuple(seconds), 1 if workers > 1 else None, studio, tuple(backgrounds))
            for i in range(subjects)]
    labels: dict[int, list[str]] = {}
    if workers > 1:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            results = pool.map(_write_talking_subject, jobs)
            for i, written in results:
                labels[i] = written
                if progress:
                    print(f"talking: S{ids[i]:03d} ({len(labels)}/{subjects})", file=sys.stderr)
    else:
        for job in jobs:
            i, labels[job[2]] = _write_talking_subject(job)
    every = [lab for written in labels.values() for lab in written]
    return {"subjects": subjects, "videos": len(every), "per_class": {c: every.count(c) for c in ("neutral", *CLASSES)},
            "seed": seed, "calm": int(calm), "studio": bool(studio)}


# --------------------------------------------------------------------------------------------
# Contact sheet
# --------------------------------------------------------------------------------------------


def read_landmarks(path) -> np.ndarray:
    return np.loadtxt(path, dtype=np.float32).reshape(68, 2)


def _face_tile(image_path: Path, lm_path: Path, tile: int) -> np.ndarray:
    img = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
    pts = read_landmarks(lm_path)
    lo, hi = pts.min(0), pts.max(0)
    c = (lo + hi) / 2 - (0, 0.1 * (hi[1] - lo[1]))  # the landmarks stop at the brows: lift for the forehead
    side = 1.4 * max(hi - lo)
    x0, y0 = int(round(c[0] - side / 2)), int(round(c[1] - side / 2))
    s = int(round(side))
    pad = max(0, -x0, -y0, x0 + s - img.shape[1], y0 + s - img.shape[0])
    if pad:
        img = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    crop = img[y0 + pad : y0 + pad + s, x0 + pad : x0 + pad + s]
    return cv2.resize(crop, (tile, tile), interpolation=cv2.INTER_AREA)


def _labelled_sequences(root: Path) -> dict[int, list[tuple[str, str, str]]]:
    """code -> [(subject, sequence, last frame stem)] from the Emotion files."""
    found: dict[int, list] = {}
    for f in sorted((root / "Emotion").glob("*/*/*_emotion.txt")):
        code = int(round(float(f.read_text().split()[0])))
        found.setdefault(code, []).append((f.parent.parent.name, f.parent.name, f.name[: -len("_emotion.txt")]))
    return found


def _landmark_tile(root: Path, subject: str, seq: str, stem: str, tile: int) -> np.ndarray:
    return _face_tile(root / "cohn-kanade-images" / subject / seq / f"{stem}.png",
                      root / "Landmarks" / subject / seq / f"{stem}_landmarks.txt", tile)


def write_contact_sheet(dataset_dir, out_png, per_class: int = 6, rows_of=None, tile_of=_landmark_tile,
                        caption: tuple[str, ...] = (), noun: str = "subject") -> None:
    """One row per class: a neutral first frame, then the peak frames of `per_class` different
    subjects (the first of them the neutral frame's own sequence), face crops labelled with
    the class name. `rows_of` ((code, name) pairs, default the 7 classes) and `tile_of` (how a
    frame becomes a face tile) let other CK+-layout sets (training.synthesis.photoreal) use the same sheet."""
    root = Path(dataset_dir)
    tile, gap, label_w, head_h = 90, 2, 84, 20  # sized so a sheet of noisy colour crops stays < 600 KB
    found = _labelled_sequences(root)
    white = lambda h, w: np.full((h, w, 3), 255, np.uint8)  # noqa: E731
    rows = []
    for code, name in rows_of or list(enumerate(CLASSES, start=1)):
        if code not in found:
            continue
        seqs, seen = [], set()
        for subj, num, stem in found[code]:
            if subj not in seen:
                seen.add(subj)
                seqs.append((subj, num, stem))
        seqs = seqs[:per_class]
        stems = [(subj, num, f"{subj}_{num}_{1:08d}") for subj, num, _ in seqs[:1]] + seqs
        tiles = [tile_of(root, a, b, c, tile) for a, b, c in stems]
        tiles += [white(tile, tile)] * (per_class + 1 - len(tiles))
        label = white(tile, label_w)
        cv2.putText(label, name, (4, tile // 2 + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        cells = [label]
        for t in tiles:
            cells += [t, white(tile, gap)]
        rows += [np.hstack(cells), white(gap, sum(c.shape[1] for c in cells))]
    if not rows:
        raise ValueError(f"{root} holds no labelled sequences")
    sheet = np.vstack(rows)
    width = sheet.shape[1]
    head = white(head_h, width)
    cv2.putText(head, "neutral", (label_w + 4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(head, f"peak frames (first: the same sequence), one {noun} each", (label_w + tile + gap + 4, 14),
                cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    parts = [head, sheet]
    if caption:
        foot = white(14 * len(caption) + 6, width)
        for j, text in enumerate(caption):
            cv2.putText(foot, text, (4, 13 + 14 * j), cv2.FONT_HERSHEY_SIMPLEX, 0.36, (60, 60, 60), 1, cv2.LINE_AA)
        parts.append(foot)
    Path(out_png).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out_png), np.vstack(parts), [cv2.IMWRITE_PNG_COMPRESSION, 9])
