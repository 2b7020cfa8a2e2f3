"""Photo-real CK+-style expression sequences from real faces (the Face Research Lab London Set).

The drawn faces of `training.synthesis.drawn` teach a model what an expression *is*, but not what a real
face looks like. This module turns the London Set (102 adults, one neutral and one smiling studio
photo each, a 189-point template on the neutral one) into CK+-layout sequences of real faces:
neutral first, the expression rising to its peak at the last frame, label named after the last
frame. The set is read from where it lies (never copied into the repository):

    DeBruine, L., & Jones, B. (2017). Face Research Lab London Set (Version 5). figshare.
    https://doi.org/10.6084/m9.figshare.5047666.v5  (CC BY 4.0)

How a sequence is made
----------------------
* **happy** is the person's *real* smile. The smiling photo is aligned to the neutral one by a
  similarity transform from the eyes (eye-and-brow patches of the neutral photo found in the
  smiling one by template matching), dense correspondence is DIS optical flow, and frame t is the
  cross-dissolve of the neutral photo warped forward by t*flow and the smile warped backward by
  (1-t)*flow (t eased 0 -> 1), so the last frame is the real smiling photo.
* **the other six classes** move the template points along each class's FACS prototype (sums of
  action units, `_AU`, in units of the inter-pupil distance, at a per-sequence peak intensity in
  [0.6, 1] and a per-person gain per AU) and warp the photo piecewise-affinely over a Delaunay
  triangulation of the template (plus fixed points on the image border): one dense map per frame,
  one cv2.remap. The triangulation is built on the template with the lips slightly parted, so a
  mouth can open; the opening is then filled with a dark interior (tongue shade, upper teeth for
  fear, surprise and disgust). Texture the warp cannot make is drawn sparingly: the AU4 furrow
  between the brows, AU9 nose wrinkles, deeper nasolabial folds, the AU14 dimple, forehead lines
  for raised brows, the pressed-lip line and the chin crease.
* **neutral** is the neutral photo with only head motion and, in about half the sequences, a blink
  (the upper lids closed by the same warp for one or two frames).
* **performances** (`render_performance`, the talking videos of `write_talking_dataset`): the same
  warps driven over time by training.synthesis.motion's tracks: speech moves the jaw and lips over
  the expression (happy: the smile morph at the track's intensity, speech warped on top), the head
  turns (parallax from a smooth depth dome, `_depth`), nods, drifts and blinks.
* Nuisance per sequence, so a model cannot learn the studio look: gray (80 % of identities) or
  colour with a random white balance; CK+-like framing in a 640x490 frame (face height 40-65 %
  of the frame height, position varied, roll up to 5 degrees) with small head motion over the
  sequence (drift, scale, roll); gamma, brightness, contrast and a brightness gradient; optical
  blur; sensor noise; JPEG re-encoding at quality 40-90.

Template points (`TEMPLATE_PARTS`; "left" = image left)::

    0, 1            pupils (left, right)          2-9, 10-17     iris outlines (left, right)
    18 / 22         left eye outer / inner corner 19-21, 28-30   left upper / lower lid (outer -> inner)
    23 / 27         right eye inner / outer corner 24-26, 31-33  right upper / lower lid (inner -> outer)
    34-38, 39-43    upper-lid creases             44-46, 47-49   under-eye lines
    71-76 (+83,84)  left brow, outer -> inner     77-82 (+85,86) right brow, inner -> outer
    50-54, 56-60    nose bridge sides             55             nose base (subnasale)
    61-65,179,180   left nostril / ala            66-70,182,181  right nostril / ala
    87 / 93         mouth corners                 88-92          upper lip, outer edge
    94-98           upper lip, inner edge         99-103         lower lip, inner edge
    104-108         lower lip, outer edge         170-173        philtrum ridges
    158-160,161-163 nasolabial folds              164-169        cheek (infra-orbital) lines
    176-178         chin crease (mentolabial)     174, 175       chin, midline
    125-133         jaw, left ear -> chin (129) -> right ear
    109-124,185-188 ears                          134-144        hairline
    145-157         hair outline                  183, 184       neck

Determinism: identity i draws from ``np.random.default_rng([seed, int(face_id)])`` and its k-th
sequence from ``default_rng([seed, int(face_id), k])`` (a morph's id: `_id_key`); a sequence's bytes do not depend on
which other identities are written or in what order.
"""

from __future__ import annotations

import json
import multiprocessing
import re
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from training.data import PEAK_STILLS_FILE
from training.synthesis import motion

CLASSES = ("anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise")  # CK+ codes 1..7
CODES = {"neutral": 0} | {name: i + 1 for i, name in enumerate(CLASSES)}
KINDS = CLASSES + ("neutral",)
N_POINTS = 189
LONDON_ENV = "RAMFER_LONDON_DIR"  # where a user's copy of the London set is, when no --london is given
LONDON_SOURCE = "https://doi.org/10.6084/m9.figshare.5047666.v5"
ATTRIBUTION = (
    "Faces: Face Research Lab London Set, DeBruine & Jones (2017), figshare, "
    "doi:10.6084/m9.figshare.5047666.v5, CC BY 4.0; expressions other than happy are synthetic warps"
)

TEMPLATE_PARTS = {
    "pupils": (0, 1),
    "iris_left": tuple(range(2, 10)),
    "iris_right": tuple(range(10, 18)),
    "eye_left_upper": (18, 19, 20, 21, 22),
    "eye_left_lower": (18, 28, 29, 30, 22),
    "eye_right_upper": (23, 24, 25, 26, 27),
    "eye_right_lower": (23, 31, 32, 33, 27),
    "lid_crease_left": (34, 35, 36, 37, 38),
    "lid_crease_right": (39, 40, 41, 42, 43),
    "under_eye_left": (44, 45, 46),
    "under_eye_right": (47, 48, 49),
    "nose_bridge_left": (50, 51, 52, 53, 54),
    "nose_bridge_right": (56, 57, 58, 59, 60),
    "nose_base": (55,),
    "nostril_left": (61, 62, 63, 64, 65, 179, 180),
    "nostril_right": (66, 67, 68, 69, 70, 182, 181),
    "brow_left": (71, 72, 73, 74, 75, 76, 83, 84),
    "brow_right": (77, 78, 79, 80, 81, 82, 85, 86),
    "mouth_corners": (87, 93),
    "upper_lip_outer": (87, 88, 89, 90, 91, 92, 93),
    "upper_lip_inner": (87, 94, 95, 96, 97, 98, 93),
    "lower_lip_inner": (87, 99, 100, 101, 102, 103, 93),
    "lower_lip_outer": (87, 104, 105, 106, 107, 108, 93),
    "ear_left": (109, 110, 111, 115, 116, 117, 118, 119, 185, 186),
    "ear_right": (112, 113, 114, 120, 121, 122, 123, 124, 187, 188),
    "jaw": (125, 126, 127, 128, 129, 130, 131, 132, 133),
    "hairline": tuple(range(134, 145)),
    "hair_outline": tuple(range(145, 158)),
    "nasolabial_left": (158, 159, 160),
    "nasolabial_right": (161, 162, 163),
    "cheek_left": (164, 165, 166),
    "cheek_right": (167, 168, 169),
    "philtrum": (170, 171, 172, 173),
    "chin": (174, 175),
    "chin_crease": (176, 177, 178),
    "neck": (183, 184),
}

# Left point -> its mirror on the right (both as seen in the image).
_MIRROR = dict(
    [(18, 27), (19, 26), (20, 25), (21, 24), (22, 23), (28, 33), (29, 32), (30, 31)]
    + [(34, 43), (35, 42), (36, 41), (37, 40), (38, 39), (44, 49), (45, 48), (46, 47)]
    + [(71, 82), (72, 81), (73, 80), (74, 79), (75, 78), (76, 77), (83, 86), (84, 85)]
    + [(50, 56), (51, 57), (52, 58), (53, 59), (54, 60)]
    + [(61, 66), (62, 67), (63, 68), (64, 69), (65, 70), (179, 182), (180, 181)]
    + [(87, 93), (88, 92), (89, 91), (94, 98), (95, 97), (99, 103), (100, 102), (104, 108), (105, 107)]
    + [(158, 161), (159, 162), (160, 163), (164, 167), (165, 168), (166, 169), (170, 172), (171, 173), (176, 178)]
    + [(125, 133), (126, 132), (127, 131), (128, 130), (183, 184)]
)
_MIDLINE = {55, 90, 96, 101, 106, 174, 175, 177, 129}
_NOT_WARPED = set(range(0, 18))  # pupils and irises: the lids move over them, they do not
_UPPER_INNER = [87, 94, 95, 96, 97, 98, 93]
_LOWER_INNER = [87, 99, 100, 101, 102, 103, 93]
_LIDS = [(19, 28), (20, 29), (21, 30), (24, 31), (25, 32), (26, 33)]  # (upper, lower) pairs
# Top-to-bottom chains whose order a warp must keep (brow, lid crease, upper lid, lower lid;
# outer lip, inner lips, outer lip, chin): a point pushed past the next one drags it along.
_CHAINS = [
    (83, 34), (83, 35), (83, 36), (84, 36), (84, 37), (84, 38), (76, 38),  # brow -> lid crease
    (86, 43), (86, 42), (86, 41), (85, 41), (85, 40), (85, 39), (77, 39),
    (35, 19, 28), (36, 20, 29), (37, 21, 30), (42, 26, 33), (41, 25, 32), (40, 24, 31),  # crease -> lids
    (88, 94, 99, 104), (89, 95, 100, 105), (90, 96, 101, 106, 177, 174, 175, 129), (91, 97, 102, 107), (92, 98, 103, 108),
]

# --------------------------------------------------------------------------------------------
# Action units: {left-side or midline point: (outward, down)} in inter-pupil distances. Right
# side points are mirrored (outward = away from the face's midline); midline points move only
# vertically. A one-sided AU (contempt) uses one half only.
# --------------------------------------------------------------------------------------------

_AU: dict[str, dict[int, tuple[float, float]]] = {
    # inner brow raiser: inner brow ends up (and a little together), upper-lid crease with them
    "1": {76: (-0.012, -0.13), 75: (-0.006, -0.11), 74: (0, -0.08), 73: (0, -0.05), 72: (0, -0.03), 71: (0, -0.015),
          84: (-0.01, -0.11), 83: (0, -0.05), 38: (0, -0.035), 37: (0, -0.025), 36: (0, -0.015)},
    # outer brow raiser
    "2": {71: (0.01, -0.12), 72: (0, -0.12), 73: (0, -0.10), 74: (0, -0.07), 75: (0, -0.04), 76: (0, -0.02),
          83: (0, -0.11), 84: (0, -0.06), 34: (0, -0.035), 35: (0, -0.03), 36: (0, -0.02)},
    # brow lowerer: brows down, inner ends down more and drawn together; lids pushed down a little
    "4": {76: (-0.05, 0.10), 75: (-0.04, 0.095), 74: (-0.025, 0.08), 73: (-0.012, 0.06), 72: (0, 0.05), 71: (0, 0.04),
          84: (-0.035, 0.09), 83: (-0.01, 0.055), 38: (-0.02, 0.045), 37: (-0.01, 0.045), 36: (0, 0.04),
          35: (0, 0.03), 34: (0, 0.02), 50: (-0.025, 0.055), 51: (-0.01, 0.025), 21: (0, 0.012), 20: (0, 0.01)},
    # upper lid raiser: more of the eye shows
    "5": {19: (0, -0.03), 20: (0, -0.042), 21: (0, -0.036), 35: (0, -0.015), 36: (0, -0.02), 37: (0, -0.015),
          28: (0, 0.008), 29: (0, 0.01), 30: (0, 0.008)},
    # lid tightener: lower lids up, eyes narrowed from below
    "7": {28: (0, -0.02), 29: (0, -0.03), 30: (0, -0.024), 44: (0, -0.015), 45: (0, -0.018), 46: (0, -0.012),
          19: (0, 0.008), 20: (0, 0.01), 21: (0, 0.008)},
    # drooping upper lids (sadness)
    "43": {19: (0, 0.02), 20: (0, 0.025), 21: (0, 0.02), 35: (0, 0.012), 36: (0, 0.015), 37: (0, 0.012)},
    # nose wrinkler: nostrils and nose base up, cheeks up beside the nose, inner brows pulled down
    "9": {61: (0.005, -0.05), 62: (0.005, -0.05), 63: (0.005, -0.05), 64: (0.005, -0.05), 65: (0.005, -0.05),
          179: (0, -0.05), 180: (0, -0.045), 55: (0, -0.04), 54: (0, -0.04), 53: (0, -0.03), 52: (0, -0.015),
          158: (0.01, -0.05), 159: (0.015, -0.04), 160: (0.01, -0.02), 166: (0, -0.03), 165: (0, -0.025),
          164: (0, -0.015), 76: (-0.02, 0.05), 75: (-0.015, 0.04), 84: (-0.015, 0.045), 74: (0, 0.025),
          50: (-0.01, 0.04), 38: (-0.01, 0.035), 37: (0, 0.02),
          28: (0, -0.012), 29: (0, -0.015), 30: (0, -0.015), 46: (0, -0.02), 45: (0, -0.02)},
    # upper lip raiser: the upper lip lifts off the lower one (an "M" shape), baring the teeth
    "10": {88: (0.005, -0.05), 89: (0, -0.075), 90: (0, -0.06), 94: (0.0, -0.035), 95: (0, -0.08), 96: (0, -0.075),
           87: (0, -0.012), 171: (0, -0.07), 170: (0, -0.045), 160: (0.015, -0.025), 159: (0.01, -0.02)},
    # lip corner puller (contempt's half smile)
    "12": {87: (0.07, -0.065), 88: (0.035, -0.035), 89: (0.012, -0.012), 94: (0.055, -0.05), 95: (0.02, -0.018),
           99: (0.055, -0.05), 100: (0.02, -0.018), 104: (0.04, -0.035), 105: (0.015, -0.012),
           160: (0.035, -0.035), 159: (0.02, -0.02), 158: (0.01, -0.01), 164: (0, -0.01), 165: (0, -0.015), 166: (0, -0.01)},
    # dimpler: the corner tightened and drawn in (with a dimple, drawn as texture)
    "14": {87: (0.012, -0.012), 94: (0.008, -0.008), 99: (0.008, -0.008), 88: (0.004, -0.004), 104: (0.004, -0.004)},
    # lip corner depressor
    "15": {87: (0.01, 0.075), 88: (0.005, 0.035), 94: (0.01, 0.055), 99: (0.01, 0.055), 104: (0.005, 0.05),
           95: (0, 0.015), 100: (0, 0.015), 105: (0, 0.02), 160: (0.01, 0.05), 159: (0, 0.015)},
    # chin raiser: chin boss and lower lip pushed up (a pout)
    "17": {104: (0, -0.03), 105: (0, -0.035), 106: (0, -0.04), 99: (0, -0.018), 100: (0, -0.022), 101: (0, -0.025),
           94: (0, -0.018), 95: (0, -0.022), 96: (0, -0.025), 88: (0, -0.008), 89: (0, -0.01), 90: (0, -0.01),
           174: (0, -0.05), 175: (0, -0.04), 176: (0, -0.03), 177: (0, -0.035), 129: (0, -0.01)},
    # lip stretcher: corners pulled sideways, lips thinned
    "20": {87: (0.09, 0.02), 88: (0.045, 0.012), 89: (0.015, 0.008), 94: (0.07, 0.02), 95: (0.025, 0.01),
           99: (0.07, 0.02), 100: (0.025, 0.01), 104: (0.045, 0.005), 105: (0.015, 0), 160: (0.035, 0.01), 159: (0.015, 0)},
    # lip tightener + presser: red of the lips narrowed, mouth narrower
    "24": {88: (-0.005, 0.025), 89: (0, 0.03), 90: (0, 0.03), 104: (-0.005, -0.028), 105: (0, -0.035), 106: (0, -0.035),
           87: (-0.022, 0), 94: (-0.015, 0), 99: (-0.015, 0), 95: (-0.005, 0), 100: (-0.005, 0)},
    # lips part
    "25": {99: (0, 0.02), 100: (0, 0.035), 101: (0, 0.04), 104: (0, 0.015), 105: (0, 0.03), 106: (0, 0.035),
           95: (0, -0.01), 96: (0, -0.012)},
    # jaw drop, per unit of drop (scaled by _JAW below): the lower lip, chin and jaw go down
    "jaw": {99: (-0.02, 0.72), 100: (0, 0.95), 101: (0, 1.0), 104: (-0.02, 0.68), 105: (0, 0.93), 106: (0, 1.0),
            87: (-0.09, 0.32), 88: (-0.03, 0.06), 94: (-0.06, 0.2), 95: (0, 0.04),
            176: (0, 0.96), 177: (0, 1.0), 174: (0, 1.0), 175: (0, 1.0), 129: (0, 1.0), 128: (0, 0.86), 127: (0, 0.56),
            126: (0, 0.26), 125: (0, 0.05), 160: (0, 0.3), 159: (0, 0.12), 183: (0, 0.9), 184: (0, 0.9)},
}
_FOLLOW = [(50, 76, 0.6), (56, 77, 0.6)]  # (point, the point it partly follows, how much)
_JAW = {"26": 0.15, "27": 0.32}  # jaw drop of AU26 / AU27, inter-pupil distances

# Prototypes: (AU, weight); "side" AUs act on one random side. Texture cues: (cue, weight).
# Strengths were raised until each class reads as itself at the network's 48 px (benchmarks/expression_look.py,
# docs/real-faces.md "Expressions that look like themselves"): at the first strengths anger, contempt,
# disgust, fear and sadness were hardly told from the neutral photo at 48 px. Disgust keeps little brow
# lowering (AU4) and lid tightening (AU7), which made it look like anger; its nose and upper lip do the work.
_EMOTIONS = {
    "anger": {"aus": {"4": 2.2, "5": 0.9, "7": 1.9, "24": 2.0, "17": 0.7}, "tex": {"furrow": 1.5, "lipline": 1.2, "brow_shadow": 1.5}},
    "contempt": {"aus": {}, "side": {"12": 2.7, "14": 2.4}, "tex": {"dimple": 1.5, "fold_side": 1.2}},
    "disgust": {"aus": {"9": 1.8, "10": 1.8, "4": 0.2, "15": 0.8, "17": 0.8, "7": 0.3},
                "tex": {"nose": 1.5, "folds": 1.5, "furrow": 0.3}, "teeth": 0.8},
    "fear": {"aus": {"1": 1.6, "2": 1.1, "4": 0.8, "5": 2.0, "20": 1.6, "25": 1.6, "26": 1.1},
             "tex": {"forehead": 0.9, "furrow": 0.5}, "teeth": 1.0, "lower_teeth": 0.6},
    "sadness": {"aus": {"1": 2.1, "4": 0.8, "15": 2.1, "17": 1.3, "43": 1.1}, "tex": {"chin": 1.2}},
    "surprise": {"aus": {"1": 1.0, "2": 1.0, "5": 1.0, "26": 1.0, "27": 0.75}, "tex": {"forehead": 1.0}, "teeth": 0.5},
    "happy": {"aus": {}, "tex": {}},
    "neutral": {"aus": {}, "tex": {}},
}


# --------------------------------------------------------------------------------------------
# The set on disk
# --------------------------------------------------------------------------------------------


def read_template(path) -> np.ndarray:
    """(189, 2) float64 x, y pixel points of a PsychoMorph .tem file."""
    lines = Path(path).read_text().split("\n")
    n = int(lines[0].split()[0])
    pts = np.array([[float(v) for v in line.split()[:2]] for line in lines[1 : 1 + n]], dtype=np.float64)
    if pts.shape != (n, 2) or n != N_POINTS:
        raise ValueError(f"{path}: expected {N_POINTS} points, got {pts.shape}")
    return pts


HOLDOUT_EVERY = 5  # every 5th identity (sorted ids) is held out of training, for evaluation
LONDON_SUBJECT = re.compile(r"(?:^|:)L(\d+(?:m\d+)?)$")  # "L001", "L001m017" (a morph), or "photoreal:L001" in a combined data set
MORPH_ID = re.compile(r"^(\d+)m(\d+)$")  # "001m017": a new face, mostly 001 with some of 017 (morph_identities)


def split_identities(ids: list[str], fold: int = 0) -> tuple[list[str], list[str]]:
    """(training ids, held-out ids): a fixed, documented split, so the served checkpoint's
    evaluation on real faces (benchmarks/london_eval.py) only sees people it never trained on.
    Fold 0 (every 5th id from the first) is the served checkpoint's; folds 1-4 (every 5th id from
    the 2nd, ..., 5th) hold out the other people in turn, for a person-independent estimate
    over the whole set (docs/real-faces.md)."""
    if not 0 <= fold < HOLDOUT_EVERY:
        raise ValueError(f"fold must be 0..{HOLDOUT_EVERY - 1}, got {fold}")
    ids = sorted(ids)
    held = ids[fold::HOLDOUT_EVERY]
    return [i for i in ids if i not in held], held


def london_face_id(subject: str) -> str | None:
    """The London face id of a photo-real data set's subject ("L001" or "photoreal:L001" -> "001",
    a morph's "L001m017" -> "001m017")."""
    m = LONDON_SUBJECT.search(subject)
    return m.group(1) if m else None


def london_people(subject: str) -> set[str]:
    """The real London people a subject's face is made of: one, two for a morph, none for other data.
    A fold that holds out a person holds out every morph of them too."""
    face_id = london_face_id(subject)
    if face_id is None:
        return set()
    m = MORPH_ID.match(face_id)
    return set(m.groups()) if m else {face_id}


def _id_key(face_id: str) -> int:
    """The integer a face's random draws are seeded with: the id itself; a morph's above every real id."""
    m = MORPH_ID.match(str(face_id))
    return 10**6 + 1000 * int(m.group(1)) + int(m.group(2)) if m else int(face_id)


def morph_identities(ids: list[str], n: int, seed: int = 0, groups: dict[str, str] | None = None) -> list[str]:
    """n new faces made of two of `ids` each ("001m017": mostly the first): distinct ordered pairs,
    a seeded draw, so the first k of n are the same faces whatever n is. 81 people are too few for a
    network to learn which resting faces are calm; a morph of two of them is a face nobody has,
    resting as calmly as they do (CC BY 4.0 allows altered forms: the London set's README).
    With `groups` (id -> group, e.g. london_groups), the first person is drawn from each group in
    turn, so a group of 9 people gets as many new faces as one of 57, as far as no one person is the
    first of more than twice their share (a group of one gives few faces, not many of one face)."""
    ids = sorted(str(i) for i in ids)
    pairs = [(a, b) for a in ids for b in ids if a != b]
    if n > len(pairs):
        raise ValueError(f"{len(ids)} people make at most {len(pairs)} morphs, not {n}")
    rng = np.random.default_rng([seed, 424242])
    order = [pairs[k] for k in rng.permutation(len(pairs))]
    if groups:
        by_group: dict[str, list] = {}
        for a, b in order:
            by_group.setdefault(groups.get(a, "?"), []).append((a, b))
        cap, queues = 2 * -(-n // len(ids)), []
        for g in sorted(by_group):
            firsts, queue = Counter(), []
            for a, b in by_group[g]:
                if firsts[a] < cap:
                    firsts[a] += 1
                    queue.append((a, b))
            queues.append(queue)
        turns = [q[i] for i in range(max(map(len, queues))) for q in queues if i < len(q)]
        taken = set(turns)
        order = turns + [p for p in order if p not in taken]
    return [f"{a}m{b}" for a, b in order[:n]]


def london_groups(london_dir) -> dict[str, str]:
    """Face id -> self-reported ethnicity, from the set's london_info.csv ({} where it is missing)."""
    import csv

    info = Path(london_dir) / "london_info.csv"
    if not info.is_file():
        return {}
    with open(info, newline="") as f:
        return {row["face_id"].zfill(3): row["face_eth"] for row in csv.DictReader(f)}


def _paths(london_dir, face_id: str) -> tuple[Path, Path, Path]:
    d = Path(london_dir)
    return d / "neutral" / f"{face_id}_03.jpg", d / "neutral" / f"{face_id}_03.tem", d / "smiling" / f"{face_id}_08.jpg"


class LondonSetMissing(FileNotFoundError):
    pass


def find_london(london_dir=None) -> Path:
    """The user's copy of the London set: `london_dir` if given, else $RAMFER_LONDON_DIR. The set is
    not part of this repository (nor of its default paths): a missing one is an error that says
    where to get it."""
    import os

    given = london_dir or os.environ.get(LONDON_ENV)
    where = f"{given} holds no London-set faces (neutral/NNN_03.jpg + .tem, smiling/NNN_08.jpg)" if given else "no London set given"
    if given and list_identities(given):
        return Path(given)
    raise LondonSetMissing(
        f"{where}. Download the Face Research Lab London Set (CC BY 4.0) from {LONDON_SOURCE}, "
        f"unpack it, and name its folder on the command line (--london DIR, or `training synth --photoreal DIR`) or in {LONDON_ENV}."
    )


def list_identities(london_dir) -> list[str]:
    """Face ids ("001", ...) that have a neutral photo, its template and a smiling photo, sorted."""
    d = Path(london_dir)
    ids = sorted(p.name[: -len("_03.jpg")] for p in (d / "neutral").glob("*_03.jpg")) if (d / "neutral").is_dir() else []
    return [i for i in ids if i.isdigit() and all(p.is_file() for p in _paths(d, i))]


def _smooth_border(img: np.ndarray, band: int = 32) -> np.ndarray:
    """Blur the outer band of the photo along its edges (top and bottom rows sideways, left and
    right columns up-down), so BORDER_REPLICATE extends it as a smooth backdrop and torso, not
    streaks, when the frame shows more than the photo."""
    h, w = img.shape[:2]
    out = img.astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    along_x = cv2.GaussianBlur(out, (0, 0), sigmaX=band * 0.5, sigmaY=0.1)  # sideways
    along_y = cv2.GaussianBlur(out, (0, 0), sigmaX=0.1, sigmaY=band * 0.5)  # up-down
    a_tb = np.clip(1 - np.minimum(yy, h - 1 - yy) / band, 0, 1) ** 1.5
    a_lr = np.clip(1 - np.minimum(xx, w - 1 - xx) / band, 0, 1) ** 1.5
    if img.ndim == 3:
        a_tb, a_lr = a_tb[..., None], a_lr[..., None]
    out = out * (1 - a_lr) + along_y * a_lr
    out = out * (1 - a_tb) + along_x * a_tb
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


@dataclass
class _Identity:
    face_id: str
    neutral: np.ndarray  # BGR uint8, border smoothed
    pts: np.ndarray  # (189, 2) template
    tris: np.ndarray  # (T, 3) indices into pts + ring
    ring: np.ndarray  # (R, 2) fixed points on the image border
    smile_path: Path
    iod: float
    eye: np.ndarray
    ex: np.ndarray
    ey: np.ndarray
    canon: np.ndarray  # the points the triangulation was built on (lips and lids a little apart)
    skin: float  # mean gray level of the cheeks and nose
    smile: tuple | None = field(default=None, repr=False)  # (aligned smile BGR, flow) once computed


def _face_frame(pts):
    e0, e1 = pts[0], pts[1]
    iod = float(np.hypot(*(e1 - e0)))
    ex = (e1 - e0) / iod
    ey = np.array([-ex[1], ex[0]])
    return (e0 + e1) / 2, iod, ex, ey


def _ring(w: int, h: int, step: float = 90.0) -> np.ndarray:
    pts = []
    nx, ny = max(2, int(round(w / step))), max(2, int(round(h / step)))
    for x in np.linspace(0, w - 1, nx + 1):
        pts += [(x, 0), (x, h - 1)]
    for y in np.linspace(0, h - 1, ny + 1)[1:-1]:
        pts += [(0, y), (w - 1, y)]
    return np.array(pts, np.float64)


def _triangulate(pts: np.ndarray, ring: np.ndarray, iod: float, ey) -> tuple[np.ndarray, np.ndarray]:
    """Delaunay triangles (indices into pts ++ ring) of the warped points, and the points they
    were built on: the template with the lips (and lids) a little apart, so the triangles between
    the lips can open into a mouth."""
    canon = pts.copy()
    canon[[94, 95, 96, 97, 98]] -= 0.02 * iod * ey
    canon[[99, 100, 101, 102, 103]] += 0.04 * iod * ey
    canon[[104, 105, 106, 107, 108]] += 0.02 * iod * ey
    for up, lo in _LIDS:  # keep the lids apart too
        gap = canon[lo] - canon[up]
        if gap @ ey < 0.02 * iod:
            canon[lo] = canon[up] + 0.02 * iod * ey
    use = [i for i in range(N_POINTS) if i not in _NOT_WARPED]
    allp = np.vstack([canon, ring])
    idx = np.array(use + list(range(N_POINTS, N_POINTS + len(ring))))
    w, h = ring.max(0) + 1
    sub = cv2.Subdiv2D((-1, -1, int(w) + 2, int(h) + 2))
    for i in idx:
        sub.insert((float(allp[i, 0]), float(allp[i, 1])))
    tl = sub.getTriangleList().reshape(-1, 3, 2)
    cand = allp[idx]
    d = np.linalg.norm(tl[:, :, None, :] - cand[None, None, :, :], axis=-1)  # (T, 3, N)
    near = d.argmin(-1)
    ok = (d.min(-1) < 0.5).all(1)
    tris = idx[near[ok]]
    return tris.astype(np.int32), allp


def _make_identity(face_id: str, img: np.ndarray, pts: np.ndarray, smile_path: Path | None) -> _Identity:
    eye, iod, ex, ey = _face_frame(pts)
    h, w = img.shape[:2]
    ring = _ring(w, h)
    tris, canon = _triangulate(pts, ring, iod, ey)
    (x0, y0), (x1, y1) = pts[[164, 46]].min(0).astype(int), pts[[167, 160]].max(0).astype(int)
    skin = float(cv2.cvtColor(img[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY).mean())
    return _Identity(face_id, _smooth_border(img), pts, tris, ring, smile_path, iod, eye, ex, ey, canon, skin)


@lru_cache(maxsize=4)
def _identity(london_dir: str, face_id: str) -> _Identity:
    if MORPH_ID.match(face_id):
        return _morph_identity(london_dir, face_id)
    img_p, tem_p, smile_p = _paths(london_dir, face_id)
    img = cv2.imread(str(img_p), cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f"cannot read {img_p}")
    return _make_identity(face_id, img, read_template(tem_p), smile_p)


def _morph_identity(london_dir: str, face_id: str) -> _Identity:
    """A face made of two: the second person's photo is moved onto the first's by a similarity on
    all 189 points, the shape is the points' weighted mean, and both photos (neutral and the aligned
    smile alike) are warped onto that shape and cross-dissolved; weight w of the second person
    (0.3-0.45, a fixed draw per pair) keeps the face mostly the first's, so two morphs of one person
    are different people."""
    first, second = MORPH_ID.match(face_id).groups()
    a, b = _identity(london_dir, first), _identity(london_dir, second)
    w = float(np.random.default_rng([_id_key(face_id), 7]).uniform(0.3, 0.45))
    m, _ = cv2.estimateAffinePartial2D(b.pts.astype(np.float32), a.pts.astype(np.float32))
    h, wd = a.neutral.shape[:2]
    b_pts = b.pts @ m[:, :2].T + m[:, 2]
    shape = (1 - w) * a.pts + w * b_pts
    ring = _ring(wd, h)

    def onto_shape(img, pts, tris):
        return _pwa_warp(img, np.vstack([pts, ring]), np.vstack([shape, ring]), tris)

    def b_aligned(img):
        return cv2.warpAffine(img, m, (wd, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    neutral = cv2.addWeighted(onto_shape(a.neutral, a.pts, a.tris), 1 - w, onto_shape(b_aligned(b.neutral), b_pts, b.tris), w, 0)
    ident = _make_identity(face_id, neutral, shape, None)
    # the smiles, each aligned to its own neutral photo, go through the same warps: the morph's smile
    smile = cv2.addWeighted(onto_shape(_smile_data(a)[0], a.pts, a.tris), 1 - w,
                            onto_shape(b_aligned(_smile_data(b)[0]), b_pts, b.tris), w, 0)
    ident.smile = _smile_flow(ident, smile)
    return ident


# --------------------------------------------------------------------------------------------
# Happy: the real smile, aligned and morphed
# --------------------------------------------------------------------------------------------


def _subpixel_peak(r: np.ndarray) -> tuple[float, float, float]:
    _, mx, _, (x, y) = cv2.minMaxLoc(r)
    dx = dy = 0.0
    if 0 < x < r.shape[1] - 1:
        a, b, c = r[y, x - 1], r[y, x], r[y, x + 1]
        den = a - 2 * b + c
        dx = 0.5 * (a - c) / den if abs(den) > 1e-9 else 0.0
    if 0 < y < r.shape[0] - 1:
        a, b, c = r[y - 1, x], r[y, x], r[y + 1, x]
        den = a - 2 * b + c
        dy = 0.5 * (a - c) / den if abs(den) > 1e-9 else 0.0
    return x + float(np.clip(dx, -1, 1)), y + float(np.clip(dy, -1, 1)), float(mx)


def _align_smile(ident: _Identity, smile: np.ndarray) -> np.ndarray:
    """2x3 similarity taking the smiling photo onto the neutral one, from the eyes: an eye-and-brow
    patch around each neutral pupil is found in the smiling photo (after a global phase-correlation
    shift), and the two matches fix rotation, scale and shift."""
    ng = cv2.cvtColor(ident.neutral, cv2.COLOR_BGR2GRAY).astype(np.float32)
    sg = cv2.cvtColor(smile, cv2.COLOR_BGR2GRAY).astype(np.float32)
    win = cv2.createHanningWindow(ng.shape[::-1], cv2.CV_32F)
    (sx, sy), _ = cv2.phaseCorrelate(ng, sg, win)  # smile ~ neutral shifted by (sx, sy)
    iod = ident.iod
    hw, hh, search = int(0.42 * iod), int(0.3 * iod), int(0.2 * iod)
    found, ok = [], True
    for e in (ident.pts[0], ident.pts[1]):
        cx, cy = int(round(e[0])), int(round(e[1] - 0.12 * iod))  # include the brow
        tpl = ng[cy - hh : cy + hh, cx - hw : cx + hw]
        px, py = int(round(cx + sx)), int(round(cy + sy))
        x0, y0 = px - hw - search, py - hh - search
        area = sg[max(0, y0) : py + hh + search, max(0, x0) : px + hw + search]
        if area.shape[0] < tpl.shape[0] + 2 or area.shape[1] < tpl.shape[1] + 2:
            ok = False
            break
        r = cv2.matchTemplate(area, tpl, cv2.TM_CCOEFF_NORMED)
        mx, my, score = _subpixel_peak(r)
        ok &= score > 0.5
        found.append((max(0, x0) + mx + hw + (e[0] - cx), max(0, y0) + my + hh + (e[1] - cy)))
    if not ok:
        return np.array([[1, 0, -sx], [0, 1, -sy]], np.float64)
    m, _ = cv2.estimateAffinePartial2D(np.array(found, np.float32), ident.pts[:2].astype(np.float32), method=cv2.LMEDS)
    if m is None:
        # two points fix a similarity exactly; do it by hand
        a0, a1 = np.array(found)
        b0, b1 = ident.pts[0], ident.pts[1]
        va, vb = a1 - a0, b1 - b0
        s = np.hypot(*vb) / np.hypot(*va)
        ang = np.arctan2(vb[1], vb[0]) - np.arctan2(va[1], va[0])
        r = s * np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
        m = np.hstack([r, (b0 - r @ a0)[:, None]])
    return m


def _smile_data(ident: _Identity) -> tuple[np.ndarray, np.ndarray]:
    """(smiling photo aligned to the neutral one, flow neutral -> smile) of an identity, cached."""
    if ident.smile is None:
        smile = cv2.imread(str(ident.smile_path), cv2.IMREAD_COLOR)
        if smile is None:
            raise FileNotFoundError(f"cannot read {ident.smile_path}")
        m = _align_smile(ident, smile)
        h, w = ident.neutral.shape[:2]
        aligned = cv2.warpAffine(smile, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        ident.smile = _smile_flow(ident, _smooth_border(aligned))
    return ident.smile


def _smile_flow(ident: _Identity, aligned: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the aligned smile, DIS flow neutral -> smile)."""
    ng = cv2.cvtColor(ident.neutral, cv2.COLOR_BGR2GRAY)
    sg = cv2.cvtColor(aligned, cv2.COLOR_BGR2GRAY)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return aligned, dis.calc(ng, sg, None)


def mouth_corner_motion(london_dir, face_id: str) -> np.ndarray:
    """(2, 2): how far each mouth corner (template points 87, 93) moves from the neutral photo to
    the smiling one, in inter-ocular distances, along (ex: towards the right eye, ey: down the
    face); the median of the smile morph's own flow in a disc of 0.05 iod around the corner.
    A broad smile pulls the corners outwards and up: left (-x, -y), right (+x, -y)."""
    ident = _identity(str(london_dir), face_id)
    _, flow = _smile_data(ident)
    h, w = flow.shape[:2]
    r = max(1, int(round(0.05 * ident.iod)))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    disc = xx**2 + yy**2 <= r * r
    moves = []
    for x, y in ident.pts[[87, 93]]:
        xs = np.clip(int(round(x)) + xx[disc], 0, w - 1)
        ys = np.clip(int(round(y)) + yy[disc], 0, h - 1)
        d = np.median(flow[ys, xs], axis=0)  # (dx, dy) in pixels
        moves.append([d @ ident.ex, d @ ident.ey])
    return np.array(moves) / ident.iod


def corner_pull(london_dir, face_id: str) -> float:
    """One number for how broad a person's real smile is: the mean over the two mouth corners of
    their outward plus upward travel (mouth_corner_motion), in inter-ocular distances. On the 102
    London people: median 0.12, range -0.001 to 0.275."""
    (lx, ly), (rx, ry) = mouth_corner_motion(london_dir, face_id)
    return float(((-lx - ly) + (rx - ry)) / 2)


# The corner pull a faint smile is rendered at, drawn per sequence: where 15 of the 17 held-out smiles
# that recipe 3 missed lie (all 17 are below 0.12; docs/real-faces.md). Not lower: at 0.03 a morph
# of a broad smile looks like the person's neutral photo, and calm faces would learn to read happy.
FAINT_PULL = (0.04, 0.10)


def faint_smile_peak(london_dir, face_id: str, rng) -> float:
    """The fraction of a person's real smile that moves the mouth corners by a faint smile's pull
    (drawn from FAINT_PULL): 1 for a person whose own smile is already that faint."""
    target = float(rng.uniform(*FAINT_PULL))
    pull = corner_pull(london_dir, face_id)
    return 1.0 if pull <= target else target / pull


def resting_corner_lift(london_dir, face_id: str) -> float:
    """How high the mouth corners sit in the neutral photo: the corners' (template points 87, 93)
    mean height above the line between the lips (the middle of the inner lip edges, 96 and 101),
    in inter-ocular distances along the face's vertical. Above 0, a resting face with upturned
    corners, which a viewer (or a model) may read as a faint smile."""
    pts = read_template(_paths(london_dir, face_id)[1])
    _, iod, _, ey = _face_frame(pts)
    mid = (pts[96] + pts[101]) / 2
    return float(np.mean([(mid - pts[c]) @ ey for c in (87, 93)]) / iod)


# --------------------------------------------------------------------------------------------
# Expressions: point displacements, the warp, texture and the mouth interior
# --------------------------------------------------------------------------------------------


def _au_disp(ident: _Identity, table: dict, sides=(-1, 1)) -> np.ndarray:
    """(189, 2) pixel displacement of one AU table on the given sides of the face."""
    d = np.zeros((N_POINTS, 2))
    for i, (out, down) in table.items():
        if i in _MIDLINE:
            if len(sides) == 2:
                d[i] += down * ident.iod * ident.ey
            else:  # one-sided AU: the midline follows the active side halfway
                d[i] += 0.5 * ident.iod * (down * ident.ey + out * sides[0] * ident.ex)
            continue
        for side in sides:
            j = i if side < 0 else _MIRROR.get(i, i)
            if j == i and side > 0 and i not in _MIRROR:
                continue
            d[j] += ident.iod * (out * side * ident.ex + down * ident.ey)
    return d


@dataclass
class _Expression:
    disp: np.ndarray  # (189, 2) pixels at the peak
    tex: dict  # cue -> strength at the peak
    side: int  # active side of one-sided AUs
    teeth: float
    lower_teeth: float


def _expression(ident: _Identity, emotion: str, gains: dict, rng) -> _Expression:
    proto = _EMOTIONS[emotion]
    peak = float(rng.uniform(0.6, 1.0))
    side = int(rng.choice([-1, 1]))
    disp = np.zeros((N_POINTS, 2))
    for au, wgt in proto["aus"].items():
        g = wgt * gains.get(au, 1.0) * peak
        if au in _JAW:
            disp += g * _JAW[au] * _au_disp(ident, _AU["jaw"])
        else:
            disp += g * _au_disp(ident, _AU[au])
    for au, wgt in proto.get("side", {}).items():
        disp += wgt * gains.get(au, 1.0) * peak * _au_disp(ident, _AU[au], sides=(side,))
    for follower, leader, f in _FOLLOW:  # glabella skin goes where the inner brow ends go
        disp[follower] += f * (disp[leader] - disp[follower])
    tex = {k: v * peak * float(rng.uniform(0.8, 1.15)) for k, v in proto["tex"].items()}
    return _Expression(disp, tex, side, proto.get("teeth", 0.0) * float(rng.uniform(0.7, 1.1)), proto.get("lower_teeth", 0.0))


def _blink(pts: np.ndarray, closed: float, ey) -> np.ndarray:
    if closed <= 0:
        return pts
    p = pts.copy()
    for up, lo in _LIDS:
        gap = pts[lo] - pts[up]
        p[up] = pts[up] + 0.9 * closed * gap
        p[lo] = pts[lo] - 0.05 * closed * gap
    for crease, (up, lo) in zip((35, 36, 37, 40, 41, 42), _LIDS):
        p[crease] = pts[crease] + 0.45 * closed * (pts[lo] - pts[up])
    return p


def _untangle(p: np.ndarray, p0: np.ndarray, ey) -> np.ndarray:
    """Keep each chain's top-to-bottom order: a point may come at most to 25 % of its neutral
    distance below the one above it (never cross it), else it is pushed down."""
    p = p.copy()
    for chain in _CHAINS:
        for a, b in zip(chain[:-1], chain[1:]):
            gap0 = max(0.0, float((p0[b] - p0[a]) @ ey))
            gap = float((p[b] - p[a]) @ ey)
            if gap < 0.25 * gap0:
                p[b] += (0.25 * gap0 - gap) * ey
    return p


def _pwa_warp(img: np.ndarray, src: np.ndarray, dst: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """Piecewise-affine warp moving the points src -> dst: each pixel of a destination triangle
    samples the source through that triangle's affine map. Only the box of the triangles that
    move is recomputed; the map is built with one fillConvexPoly per triangle and array maths."""
    moved = np.abs(dst - src).max(1) > 0.05
    act = tris[moved[tris].any(1)]
    if len(act) == 0:
        return img
    h, w = img.shape[:2]
    corners = np.vstack([dst[act].reshape(-1, 2), src[act].reshape(-1, 2)])
    x0, y0 = np.clip(np.floor(corners.min(0)).astype(int) - 1, 0, None)
    x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int) + 2, (w, h))
    if x1 <= x0 or y1 <= y0:
        return img
    d = dst[act]  # (T, 3, 2)
    s = src[act]
    area = 0.5 * ((d[:, 1, 0] - d[:, 0, 0]) * (d[:, 2, 1] - d[:, 0, 1]) - (d[:, 2, 0] - d[:, 0, 0]) * (d[:, 1, 1] - d[:, 0, 1]))
    keep = np.abs(area) > 0.05
    d, s = d[keep], s[keep]
    n = len(d)
    a = np.concatenate([d, np.ones((n, 3, 1))], axis=2)  # (T, 3, 3): [x y 1] rows
    coef = np.linalg.solve(a, s)  # (T, 3, 2): src = [x y 1] @ coef
    coef = np.concatenate([coef, np.array([[[1, 0], [0, 1], [0, 0]]], np.float64)], axis=0)  # identity for uncovered pixels
    labels = np.full((y1 - y0, x1 - x0), n, np.int32)
    shift = 4
    dd = np.round((d - (x0, y0)) * (1 << shift)).astype(np.int32)
    for k in range(n):
        cv2.fillConvexPoly(labels, dd[k], k, lineType=cv2.LINE_8, shift=shift)
    coef = coef.astype(np.float32).reshape(n + 1, 6)
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    c = coef[labels]  # (h, w, 6)
    mapx = c[..., 0] * xx + c[..., 2] * yy + c[..., 4]
    mapy = c[..., 1] * xx + c[..., 3] * yy + c[..., 5]
    out = img.copy()
    out[y0:y1, x0:x1] = cv2.remap(img, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).reshape(out[y0:y1, x0:x1].shape)
    return out


def _chaikin(poly: np.ndarray, closed: bool, n: int = 2) -> np.ndarray:
    p = np.asarray(poly, np.float64)
    for _ in range(n):
        q = np.roll(p, -1, axis=0) if closed else p[1:]
        a = p if closed else p[:-1]
        new = np.empty((2 * len(a), 2))
        new[0::2] = 0.75 * a + 0.25 * q
        new[1::2] = 0.25 * a + 0.75 * q
        p = new if closed else np.vstack([p[:1], new, p[-1:]])
    return p


def _texture(img: np.ndarray, p: np.ndarray, ident_scale: tuple, tex: dict, amount: float, side: int) -> np.ndarray:
    """Darken (multiplicatively) along the lines an expression creates at its current strength.
    p are the current (warped) points, ident_scale (iod, eye, ex, ey) at work scale."""
    if amount <= 0.01 or not tex:
        return img
    iod, eye, ex, ey = ident_scale
    face = p[[71, 82, 129, 125, 133, 139]]
    x0, y0 = np.clip(np.floor(face.min(0) - 0.3 * iod).astype(int), 0, None)
    x1, y1 = np.minimum(np.ceil(face.max(0) + 0.3 * iod).astype(int), img.shape[1::-1])
    if x1 <= x0 or y1 <= y0:
        return img
    m = np.zeros((y1 - y0, x1 - x0), np.float32)  # creases
    m2 = np.zeros_like(m)  # broad shading
    sh = 4
    o = np.array([x0, y0], np.float64)

    def line(pts, strength, width=0.022, closed=False, soft=False, taper=False):
        """A crease (or, soft, a broad shade); tapered ones fade out towards both ends."""
        if strength <= 0:
            return
        t = max(1, int(round(width * iod)))
        pts = np.asarray(pts, np.float64)
        if not taper:
            q = np.round((pts - o) * (1 << sh)).astype(np.int32)
            cv2.polylines(m2 if soft else m, [q], closed, float(strength), t, cv2.LINE_AA, sh)
            return
        dense = _chaikin(pts, False, 3) if len(pts) > 2 else np.linspace(pts[0], pts[-1], 9)
        n = len(dense) - 1
        for j in range(n):
            u = (j + 0.5) / n
            q = np.round((dense[j : j + 2] - o) * (1 << sh)).astype(np.int32)
            cv2.polylines(m2 if soft else m, [q], False, float(strength * np.sin(np.pi * u) ** 0.8), t, cv2.LINE_AA, sh)

    k = amount
    if tex.get("furrow"):
        s = 0.13 * tex["furrow"] * k
        bl, br = p[76], p[77]  # inner brow ends
        mid = (bl + br) / 2
        for f in (-0.3, 0.3):
            base = mid + f * (br - bl) * 0.5
            a, b = base + 0.03 * iod * ey, base - 0.15 * iod * ey - f * 0.05 * iod * ex
            line([a, (a + b) / 2 + f * 0.012 * iod * ex, b], s, width=0.02, taper=True)
            line([a, b], 0.8 * s, width=0.03, soft=True, taper=True)
    if tex.get("brow_shadow"):
        s = 0.12 * tex["brow_shadow"] * k  # the lowered brow shades the upper lid
        for brow in ((71, 83, 84, 76), (82, 86, 85, 77)):
            line(p[list(brow)] + 0.05 * iod * ey, s, width=0.06, soft=True, taper=True)
    if tex.get("nose"):  # AU9: crossways creases over the nose root, shade beside it
        s = 0.17 * tex["nose"] * k
        c = (p[50] + p[56]) / 2
        half = 0.5 * np.hypot(*(p[56] - p[50]))
        for j, v in enumerate((0.04, 0.11, 0.18)):
            y = c + v * iod * ey
            bend = 0.012 * iod * ey
            line([y - half * ex + bend, y, y + half * ex + bend], s * (1 - 0.25 * j), width=0.018, taper=True)
        line([c - 0.5 * half * ex, c + 0.5 * half * ex], 0.14 * tex["nose"] * k, width=0.1, soft=True)
        line(p[[52, 53, 54]], 0.15 * tex["nose"] * k, width=0.06, soft=True)
        line(p[[58, 59, 60]], 0.15 * tex["nose"] * k, width=0.06, soft=True)
    if tex.get("folds"):  # deepened nasolabial folds
        s = 0.16 * tex["folds"] * k
        line(p[[180, 158, 159, 160]], s, width=0.05, soft=True)
        line(p[[181, 161, 162, 163]], s, width=0.05, soft=True)
        line(p[[158, 159]], 0.5 * s, width=0.015)
        line(p[[161, 162]], 0.5 * s, width=0.015)
    if tex.get("fold_side"):
        s = 0.2 * tex["fold_side"] * k
        line(p[[180, 158, 159, 160]] if side < 0 else p[[181, 161, 162, 163]], s, width=0.05, soft=True)
    if tex.get("dimple"):  # AU14: a short crease beside the tightened corner
        s = 0.3 * tex["dimple"] * k
        c = p[87] if side < 0 else p[93]
        out = side * ex
        line([c + 0.03 * iod * out - 0.035 * iod * ey, c + 0.05 * iod * out + 0.005 * iod * ey, c + 0.04 * iod * out + 0.045 * iod * ey], s, width=0.02)
        line([c + 0.02 * iod * out - 0.01 * iod * ey, c + 0.035 * iod * out + 0.02 * iod * ey], 0.6 * s, width=0.06, soft=True)
    if tex.get("lipline"):
        s = 0.3 * tex["lipline"] * k
        line(_chaikin(p[_UPPER_INNER], False), s, width=0.02)
    if tex.get("chin"):
        s = 0.22 * tex["chin"] * k
        line(_chaikin(p[[176, 177, 178]], False), s, width=0.035)
    if tex.get("forehead"):
        s = 0.11 * tex["forehead"] * k
        hair_y = float(np.max((p[135:144] - eye) @ ey))  # lowest hairline point (above the eyes: negative)
        brow = np.vstack([p[[72, 73, 74, 75]], (p[76] + p[77]) / 2, p[[78, 79, 80, 81]]])
        for j, v in enumerate((0.1, 0.2, 0.3)):
            y = brow - v * iod * ey - 0.04 * iod * ey * np.sin(np.linspace(0, np.pi, len(brow)))[:, None]
            if float(np.min((y - eye) @ ey)) - 0.04 * iod <= hair_y:
                break
            line(y, s * (1 - 0.2 * j), width=0.016, taper=True)
            line(y[2:-2], 0.5 * s, width=0.05, soft=True, taper=True)
    m = cv2.GaussianBlur(m, (0, 0), max(0.6, 0.012 * iod))
    if m2.any():
        m += cv2.GaussianBlur(m2, (0, 0), max(1.0, 0.03 * iod))
    roi = img[y0:y1, x0:x1].astype(np.float32)
    gain = 1 - np.clip(m, 0, 0.6)
    roi *= gain[..., None] if roi.ndim == 3 else gain
    out = img.copy()
    out[y0:y1, x0:x1] = np.clip(roi + 0.5, 0, 255).astype(np.uint8)
    return out


def _mouth_interior(img: np.ndarray, p: np.ndarray, p0: np.ndarray, iod: float, ey, expr: _Expression, amount: float) -> np.ndarray:
    """Fill the opening between the inner lip lines (p: current points, p0: neutral) with a dark,
    shaded interior; upper (and lower) teeth where the expression shows them."""
    up, lo = _UPPER_INNER, _LOWER_INNER
    gap0 = (p0[lo[1:-1]] - p0[up[1:-1]]) @ ey
    gap = (p[lo[1:-1]] - p[up[1:-1]]) @ ey - np.maximum(gap0, 0)
    gmax = float(gap.max())
    if gmax < 0.012 * iod:
        return img
    upper = _chaikin(p[up], False, 3)
    lower = _chaikin(p[lo], False, 3)
    poly = np.vstack([upper, lower[::-1][1:-1]])
    x0, y0 = np.clip(np.floor(poly.min(0)).astype(int) - 3, 0, None)
    x1, y1 = np.minimum(np.ceil(poly.max(0)).astype(int) + 4, img.shape[1::-1])
    if x1 - x0 < 3 or y1 - y0 < 3:
        return img
    o = np.array([x0, y0])
    sh = 4
    hh, ww = y1 - y0, x1 - x0
    mask = np.zeros((hh, ww), np.float32)
    cv2.fillPoly(mask, [np.round((poly - o) * (1 << sh)).astype(np.int32)], 1.0, cv2.LINE_AA, sh)
    mask = cv2.GaussianBlur(mask, (0, 0), max(0.5, 0.006 * iod))
    # fade in as the mouth opens, so a barely-parted mouth shows a dark line, not a hole
    mask *= float(np.clip(gmax / (0.05 * iod), 0.35, 1.0))
    yy, xx = np.mgrid[0:hh, 0:ww].astype(np.float32)
    # vertical position inside the opening: 0 at the upper lip, 1 at the lower lip
    xs = np.arange(ww, dtype=np.float32) + x0
    order_u, order_l = np.argsort(upper[:, 0]), np.argsort(lower[:, 0])
    yu = np.interp(xs, upper[order_u, 0], upper[order_u, 1]) - y0
    yl = np.interp(xs, lower[order_l, 0], lower[order_l, 1]) - y0
    span = np.maximum(yl - yu, 1.0)
    v = np.clip((yy - yu) / span, 0, 1)
    xc = (p[87, 0] + p[93, 0]) / 2 - x0
    halfw = max(1.0, abs(p[93, 0] - p[87, 0]) / 2)
    uu = np.clip(np.abs(xx - xc) / halfw, 0, 1)
    nch = 1 if img.ndim == 2 else img.shape[2]
    dark = np.array([22, 22, 30][:nch] if nch == 3 else [24], np.float32)
    tongue = np.array([55, 55, 95][:nch] if nch == 3 else [62], np.float32)
    teeth = np.array([200, 208, 214][:nch] if nch == 3 else [206], np.float32)
    # darkest in the middle, a lighter tongue towards the lower lip
    tw = (np.clip((v - 0.55) / 0.45, 0, 1) * (1 - uu**2) * 0.8)[..., None]
    col = dark * (1 + 0.5 * uu[..., None]) * (1 - tw) + tongue * tw
    if expr.teeth > 0:
        th = np.minimum(0.42 * span, 0.075 * iod)  # upper teeth height per column
        prof = np.clip(1 - uu**2, 0, 1) ** 0.6
        t_up = ((yy - yu) < th * prof).astype(np.float32) * (yy >= yu - 1)
        t_up = cv2.GaussianBlur(t_up, (0, 0), max(0.5, 0.008 * iod))
        a = (expr.teeth * t_up * prof * (0.75 + 0.25 * (1 - uu)))[..., None]
        shade = 0.85 + 0.15 * (1 - uu[..., None])
        col = col * (1 - a) + teeth * shade * a
        if expr.lower_teeth > 0:
            tl = np.minimum(0.25 * span, 0.045 * iod)
            t_lo = ((yl - yy) < tl * prof).astype(np.float32) * (yy <= yl + 1)
            t_lo = cv2.GaussianBlur(t_lo, (0, 0), max(0.5, 0.008 * iod))
            a = (expr.lower_teeth * 0.8 * t_lo * prof)[..., None]
            col = col * (1 - a) + teeth * 0.8 * a
    roi = img[y0:y1, x0:x1].astype(np.float32).reshape(hh, ww, nch)
    mm = np.clip(mask * min(1.0, amount * 3), 0, 1)[..., None]
    roi = roi * (1 - mm) + col * mm
    out = img.copy()
    out[y0:y1, x0:x1] = np.clip(roi + 0.5, 0, 255).astype(np.uint8).reshape(out[y0:y1, x0:x1].shape)
    return out


# --------------------------------------------------------------------------------------------
# Camera: framing, head motion, light, blur, noise, compression
# --------------------------------------------------------------------------------------------


@dataclass
class _Scene:
    size: tuple[int, int]
    work: float  # photo -> working image scale
    poses: list  # per frame 2x3 working image -> frame
    gain: np.ndarray  # (H, W[, 3]) multiplicative light
    offset: float
    gamma_lut: np.ndarray
    blur: float
    noise: float
    quality: int
    noise_seed: int  # sensor noise of frame i: default_rng([noise_seed, i])


def _ease(n_frames: int, onset: int) -> np.ndarray:
    """0 for the `onset` neutral frames, then a smooth (cosine) rise to 1 at the last frame."""
    t = np.arange(n_frames, dtype=np.float64)
    s = np.clip((t - onset + 1) / max(1, n_frames - onset), 0, 1)
    return 0.5 - 0.5 * np.cos(np.pi * s)


def _make_scene(ident: _Identity, size, n: int, color: bool, rng, head=None) -> _Scene:
    """The camera of one sequence. `head` = (roll degrees (n,), shift in face heights (n, 2), scale (n,)),
    a motion.Performance's tracks, moves the head; without it, a small drift and wobble of its own."""
    w, h = size
    pts = ident.pts
    chin = pts[129]
    eye = ident.eye
    face_h = 1.7 * float((chin - eye) @ ident.ey)  # hairline to chin, about
    centre = chin - 0.5 * face_h * ident.ey  # middle of hairline..chin
    frac = float(rng.uniform(0.40, 0.65))
    scale = frac * h / face_h
    cx = float(rng.uniform(0.36, 0.64)) * w
    half = 0.5 * frac * h
    cy = float(rng.uniform(max(0.02 * h + half, 0.42 * h), min(0.98 * h - half, 0.58 * h))) if half < 0.46 * h else 0.5 * h
    roll0 = float(rng.uniform(-5, 5)) + np.degrees(np.arctan2(ident.ex[1], ident.ex[0]))  # level the eyes, then tilt
    if head is None:
        # head motion over the sequence: smooth drift plus a little wobble
        t = np.linspace(0, 1, n)
        drift = rng.normal(0, 0.018, 2) * face_h * scale
        wob_f, wob_ph = float(rng.uniform(0.5, 1.5)), float(rng.uniform(0, 2 * np.pi))
        wob = rng.normal(0, 0.006, 2) * face_h * scale
        droll, dscale = float(rng.normal(0, 1.5)), float(rng.normal(0, 0.025))
        rolls = roll0 + droll * t
        sizes = 1 + dscale * t
        shifts = [drift * t[i] + wob * np.sin(2 * np.pi * wob_f * t[i] + wob_ph) + rng.normal(0, 0.15, 2) for i in range(n)]
    else:
        roll, shift, hscale = head
        rolls, sizes = roll0 + np.asarray(roll), np.asarray(hscale)
        dscale = float(np.abs(sizes - 1).max())
        shifts = list(np.asarray(shift) * face_h * scale)
    work = float(min(1.0, 1.6 * scale * (1 + abs(dscale) * 2)))
    if work > 0.8:
        work = 1.0
    poses = []
    for i in range(n):
        m = cv2.getRotationMatrix2D((float(centre[0] * work), float(centre[1] * work)), float(np.degrees(np.radians(rolls[i]))), float(scale * sizes[i] / work))
        m[:, 2] += np.array([cx, cy]) + shifts[i] - centre * work
        poses.append(m)
    # light: contrast, a brightness gradient in a random direction, white balance, gamma, and an
    # exposure that keeps the skin near its own level (as a camera's auto-exposure would)
    contrast = float(rng.uniform(0.7, 1.2))
    gang = float(rng.uniform(0, 2 * np.pi))
    gamp = float(rng.uniform(0, 0.35))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = ((xx / w - 0.5) * np.cos(gang) + (yy / h - 0.5) * np.sin(gang)) * 2 * gamp
    gain = (contrast * (1 + ramp)).astype(np.float32)
    if color:
        wb = np.array([rng.uniform(0.85, 1.12), 1.0, rng.uniform(0.85, 1.12)], np.float32)
        gain = gain[..., None] * wb
    gamma = float(np.exp(rng.uniform(np.log(0.8), np.log(1.25))))
    lut = np.clip(255 * (np.arange(256) / 255.0) ** gamma + 0.5, 0, 255).astype(np.uint8)
    skin = 255 * (ident.skin / 255) ** gamma
    target = float(np.clip(skin * rng.uniform(0.75, 1.25) + rng.uniform(-10, 20), 55, 200))  # darker skin stays darker
    offset = float(np.clip(target - contrast * skin, -60, 90))
    blur = float(rng.uniform(0, 1.3)) * h / 490
    noise = float(rng.uniform(1.0, 5.0))
    quality = int(rng.integers(40, 91))
    return _Scene((w, h), work, poses, gain, offset, lut, blur, noise, quality, int(rng.integers(2**62)))


def _camera(scene: _Scene, img: np.ndarray, i: int) -> np.ndarray:
    w, h = scene.size
    f = cv2.warpAffine(img, scene.poses[i], (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    f = cv2.LUT(f, scene.gamma_lut)
    f = f.astype(np.float32) * scene.gain + scene.offset
    if scene.blur > 0.3:
        f = cv2.GaussianBlur(f, (0, 0), scene.blur)
    f += np.random.default_rng([scene.noise_seed, i]).standard_normal(f.shape, dtype=np.float32) * scene.noise
    u8 = np.clip(f + 0.5, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", u8, [cv2.IMWRITE_JPEG_QUALITY, scene.quality])
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)


def _in_studio(ident: _Identity, studio, smile: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """The neutral photo (and the aligned smile) moved into `studio` (training.synthesis.studio): the
    London wall replaced, the person relit, the camera's colour response. None: as photographed."""
    if studio is None:
        return ident.neutral, smile
    from training.synthesis import studio as studios

    neutral = studios.apply(ident.neutral, ident.pts, studio)
    if smile is not None:
        smile = studios.apply(smile, _smile_points(ident, 1.0), studio)
    return neutral, smile


def _film(scene: _Scene, img: np.ndarray, i: int, studio) -> np.ndarray:
    """Frame i as this sequence's camera films it, then through the studio camera's tone, vignette and noise."""
    frame = _camera(scene, img, i)
    if studio is None:
        return frame
    from training.synthesis import studio as studios

    return studios.camera_frame(frame, studio.camera, i)


# --------------------------------------------------------------------------------------------
# Sequences
# --------------------------------------------------------------------------------------------


def _gains(face_id: str, seed: int = 0) -> dict:
    """How strongly this person moves each AU (a fixed draw per face, independent of the sequence)."""
    r = np.random.default_rng([seed, _id_key(face_id), 10**6])
    return {au: float(r.uniform(0.85, 1.2)) for au in sorted(set(_AU) | set(_JAW))}


def _blinks(n_frames: int, rng) -> np.ndarray:
    closed = np.zeros(n_frames)
    if n_frames >= 3 and rng.random() < 0.5:
        i = int(rng.integers(1, n_frames - 1))
        closed[i] = float(rng.uniform(0.75, 1.0))
        if i + 1 < n_frames - 1 and rng.random() < 0.6:
            closed[i + 1] = closed[i] * float(rng.uniform(0.4, 1.0))
        if i - 1 > 0 and rng.random() < 0.4:
            closed[i - 1] = closed[i] * 0.4
    return closed


def render_identity_sequence(
    london_dir, face_id, emotion, n_frames, rng, size=(640, 490), color=False, peak: float = 1.0, studio=None
) -> list[np.ndarray]:
    """One CK+-style sequence of a London Set face: frame 0 neutral, `emotion` peaking at the
    last frame. Returns uint8 frames, (H, W) gray or (H, W, 3) BGR when `color`; size is (W, H).
    `emotion` is one of CLASSES or "neutral" (head motion and maybe a blink only).
    `peak` < 1 (happy only) stops the smile morph at that fraction of the person's real smile: a
    faint smile (see `faint_smile_peak`).

    Draws from `rng` in a fixed order: the onset (1-4 neutral frames), then the camera (framing,
    head motion, light, blur, noise, JPEG quality), then the expression. So one rng state gives
    the same camera for every emotion, and the frames before the onset ends are identical."""
    if emotion not in _EMOTIONS:
        raise ValueError(f"unknown emotion {emotion!r}; expected one of {KINDS}")
    n_frames = int(n_frames)
    if n_frames < 2:
        raise ValueError("a sequence needs at least 2 frames (neutral first, peak last)")
    face_id = str(face_id)
    ident = _identity(str(Path(london_dir).resolve()), face_id)
    size = (int(size[0]), int(size[1]))
    onset = int(rng.integers(1, min(4, n_frames - 1) + 1))
    curve = _ease(n_frames, onset)
    scene = _make_scene(ident, size, n_frames, color, rng)
    k = scene.work

    def prep(im):
        if k != 1.0:
            im = cv2.resize(im, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
        return im if color else cv2.cvtColor(im, cv2.COLOR_BGR2GRAY)

    if not 0.0 < peak <= 1.0 or (peak < 1.0 and emotion != "happy"):
        raise ValueError(f"peak must be in (0, 1], and below 1 only for happy, got {peak} for {emotion}")
    frames = []
    if emotion == "happy":
        aligned, flow = _smile_data(ident)
        neutral, aligned = _in_studio(ident, studio, aligned)
        neutral, smile = prep(neutral), prep(aligned)
        if k != 1.0:
            flow = cv2.resize(flow, neutral.shape[1::-1], interpolation=cv2.INTER_AREA) * k
        hh, ww = neutral.shape[:2]
        gx, gy = np.meshgrid(np.arange(ww, dtype=np.float32), np.arange(hh, dtype=np.float32))
        for i in range(n_frames):
            t = peak * float(curve[i])
            if t <= 0:
                img = neutral
            elif t >= 1:
                img = smile
            else:
                a = cv2.remap(neutral, gx - t * flow[..., 0], gy - t * flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                b = cv2.remap(smile, gx + (1 - t) * flow[..., 0], gy + (1 - t) * flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                # A faint smile is mostly the face's shape: dissolving in only t**2 of the smiling
                # photo's texture keeps its teeth from showing through as a ghost at low t.
                w = t if peak >= 1.0 else t * t
                img = cv2.addWeighted(a, 1 - w, b, w, 0)
            frames.append(_film(scene, img, i, studio))
        return frames

    base = prep(_in_studio(ident, studio)[0])
    p0 = np.vstack([ident.pts, ident.ring]) * k
    iod = ident.iod * k
    frame_of = (iod, ident.eye * k, ident.ex, ident.ey)
    if emotion == "neutral":
        expr = _Expression(np.zeros((N_POINTS, 2)), {}, 1, 0.0, 0.0)
        closed = _blinks(n_frames, rng)
    else:
        expr = _expression(ident, emotion, _gains(face_id), rng)
        closed = np.zeros(n_frames)
    disp = np.vstack([expr.disp, np.zeros((len(ident.ring), 2))]) * k
    for i in range(n_frames):
        c = float(curve[i]) if emotion != "neutral" else 0.0
        p = p0 + c * disp
        if closed[i] > 0:
            p[:N_POINTS] = _blink(p[:N_POINTS], closed[i], ident.ey)
        if c > 0:
            p = _untangle(p, p0, ident.ey)
        img = _pwa_warp(base, p0, p, ident.tris) if (c > 0 or closed[i] > 0) else base
        if c > 0:
            img = _texture(img, p, frame_of, expr.tex, c, expr.side)
            img = _mouth_interior(img, p, p0, iod, ident.ey, expr, c)
        frames.append(_film(scene, img, i, studio))
    return frames


# --------------------------------------------------------------------------------------------
# Performances: a face that talks, turns, blinks and shows an expression as it comes and goes
# (the tracks come from training.synthesis.motion, shared with the drawn renderer)
# --------------------------------------------------------------------------------------------

# Speech mouth shapes on the template, {left or midline point: (outward, down)} in inter-pupil
# distances at full strength, as _AU. The jaw itself reuses _AU["jaw"] (lower lip, chin and jaw down).
_SPEECH = {
    # lips spread ("ee"): corners out, lips thinned a little
    "spread": {87: (0.06, -0.005), 94: (0.05, 0), 99: (0.05, 0), 88: (0.03, 0.003), 104: (0.03, -0.003),
               89: (0.01, 0.004), 105: (0.01, -0.004), 95: (0.02, 0), 100: (0.02, 0), 160: (0.015, 0)},
    # lips rounded ("oo"): corners in, lips pushed out (taller in the picture)
    "round": {87: (-0.07, 0.0), 94: (-0.055, 0), 99: (-0.055, 0), 88: (-0.035, -0.012), 104: (-0.035, 0.012),
              89: (-0.012, -0.015), 105: (-0.012, 0.015), 95: (-0.02, 0), 100: (-0.02, 0), 90: (0, -0.015), 106: (0, 0.015)},
    # lips pressed (m, b, p): the red of the lips narrowed
    "press": {88: (0, 0.012), 89: (0, 0.015), 90: (0, 0.015), 104: (0, -0.015), 105: (0, -0.018), 106: (0, -0.018)},
}
JAW_SPEECH = 0.14  # inter-pupil distances of chin drop at jaw = 1 (a wide "ah"; AU26 is 0.15, AU27 0.32)


def _depth(ident: _Identity) -> np.ndarray:
    """(189,) how far each template point stands out towards the camera, in inter-pupil distances:
    a smooth dome over the face (1 iod at its centre, falling off with no edge, so the warp does not
    fold where the cheek meets the ears and hair) with the nose standing out from it. Enough for the
    parallax of a head turned by up to ~20 degrees."""
    centre = ident.eye + 0.55 * ident.iod * ident.ey
    rel = ident.pts - centre
    u, v = rel @ ident.ex / ident.iod, rel @ ident.ey / ident.iod
    z = np.exp(-((u / 1.3) ** 2) - (v / np.where(v < 0, 2.0, 1.6)) ** 2)
    tip = ident.pts[[53, 59, 55]].mean(0)
    return z + 0.45 * np.exp(-(np.linalg.norm(ident.pts - tip, axis=1) / (0.3 * ident.iod)) ** 2)


def _turn(p: np.ndarray, centre: np.ndarray, iod: float, ex, ey, depth: np.ndarray, yaw: float, pitch: float) -> np.ndarray:
    """Template points of a frontal face as they appear with the head turned by yaw (degrees, + to
    the image right) and pitched by pitch (+ down): rotation of (u, v, depth) seen by an orthographic
    camera. Points beyond the template (the image border ring) stay."""
    n = len(depth)
    rel = p[:n] - centre
    u, v, z = rel @ ex, rel @ ey, depth * iod
    a, b = np.radians(yaw), np.radians(pitch)
    u, z = u * np.cos(a) + z * np.sin(a), z * np.cos(a) - u * np.sin(a)
    v = v * np.cos(b) + z * np.sin(b)
    out = p.copy()
    out[:n] = centre + np.outer(u, ex) + np.outer(v, ey)
    return out


def _speech_disp(ident: _Identity, jaw: float, spread: float, press: float) -> np.ndarray:
    """(189, 2) pixels: the mouth shape of one speech frame (motion.speech's units)."""
    d = jaw * JAW_SPEECH * _au_disp(ident, _AU["jaw"])
    d += min(1.0, 3 * jaw) * (1 - press) * 0.6 * _au_disp(ident, _AU["25"])  # the lips part as the jaw opens
    d += max(spread, 0.0) * _au_disp(ident, _SPEECH["spread"]) + max(-spread, 0.0) * _au_disp(ident, _SPEECH["round"])
    return d + press * _au_disp(ident, _SPEECH["press"])


def _smile_points(ident: _Identity, t: float) -> np.ndarray:
    """Where the template points are in the smile morph at fraction t: each carried by t x the flow."""
    _, flow = _smile_data(ident)
    h, w = flow.shape[:2]
    xi = np.clip(np.round(ident.pts[:, 0]).astype(int), 0, w - 1)
    yi = np.clip(np.round(ident.pts[:, 1]).astype(int), 0, h - 1)
    return ident.pts + t * flow[yi, xi].astype(np.float64)


def render_performance(london_dir, face_id, emotion: str, perf, rng, size=(640, 360), color: bool = False,
                       studio=None) -> list[np.ndarray]:
    """Frames of a London face performing `perf` (a motion.Performance): `emotion` (one of CLASSES, or
    "neutral") shown at perf.intensity, speech moving the jaw and lips over it, the head turning,
    nodding and drifting, blinks. Happy is the person's real smile (the morph, at the intensity), the
    other six the FACS warps. Returns uint8 frames, gray (H, W) or BGR (H, W, 3); size is (W, H)."""
    if emotion not in _EMOTIONS:
        raise ValueError(f"unknown emotion {emotion!r}; expected one of {KINDS}")
    face_id = str(face_id)
    ident = _identity(str(Path(london_dir).resolve()), face_id)
    n = len(perf)
    scene = _make_scene(ident, (int(size[0]), int(size[1])), n, color, rng, head=(perf.roll, perf.shift, perf.scale))
    k = scene.work

    def prep(im):
        if k != 1.0:
            im = cv2.resize(im, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
        return im if color else cv2.cvtColor(im, cv2.COLOR_BGR2GRAY)

    if emotion in ("neutral", "happy"):
        expr = _Expression(np.zeros((N_POINTS, 2)), {}, 1, 0.0, 0.0)
    else:
        expr = _expression(ident, emotion, _gains(face_id), rng)
    speech = _Expression(expr.disp, expr.tex, expr.side, max(expr.teeth, float(rng.uniform(0.5, 0.9))),
                         max(expr.lower_teeth, float(rng.uniform(0.0, 0.5))))
    ring = np.zeros((len(ident.ring), 2))
    depth = _depth(ident)
    iod, ey, ex = ident.iod * k, ident.ey, ident.ex
    centre = (ident.eye + 0.55 * ident.iod * ident.ey) * k
    frame_of = (iod, ident.eye * k, ex, ey)
    aligned, flow = _smile_data(ident) if emotion == "happy" else (None, None)
    neutral, aligned = _in_studio(ident, studio, aligned)
    neutral = prep(neutral)
    if emotion == "happy":
        smile = prep(aligned)
        if k != 1.0:
            flow = cv2.resize(flow, neutral.shape[1::-1], interpolation=cv2.INTER_AREA) * k
        gx, gy = np.meshgrid(np.arange(neutral.shape[1], dtype=np.float32), np.arange(neutral.shape[0], dtype=np.float32))
    frames = []
    for i in range(n):
        c = float(perf.intensity[i])
        if emotion == "happy" and c > 0.01:
            a = cv2.remap(neutral, gx - c * flow[..., 0], gy - c * flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            b = cv2.remap(smile, gx + (1 - c) * flow[..., 0], gy + (1 - c) * flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            base = cv2.addWeighted(a, 1 - c, b, c, 0)
            src = np.vstack([_smile_points(ident, c), ident.ring]) * k
        else:
            base, src = neutral, np.vstack([ident.pts, ident.ring]) * k
            c = c if emotion != "happy" else 0.0
        move = _speech_disp(ident, perf.jaw[i], perf.spread[i], perf.press[i])
        if emotion not in ("neutral", "happy"):
            move = move + c * expr.disp
        p = src + np.vstack([move, ring]) * k
        if perf.blink[i] > 0.02:
            p[:N_POINTS] = _blink(p[:N_POINTS], float(perf.blink[i]), ey)
        p = _untangle(p, src, ey)
        p = _turn(p, centre, iod, ex, ey, depth, float(perf.yaw[i]), float(perf.pitch[i]))
        img = _pwa_warp(base, src, p, ident.tris)
        if c > 0.01 and expr.tex:
            img = _texture(img, p, frame_of, expr.tex, c, expr.side)
        img = _mouth_interior(img, p, _turn(src, centre, iod, ex, ey, depth, float(perf.yaw[i]), float(perf.pitch[i])), iod, ey, speech, 1.0)
        frames.append(_film(scene, img, i, studio))
    return frames


# --------------------------------------------------------------------------------------------
# The CK+ tree
# --------------------------------------------------------------------------------------------


# Which peak frames `--neutral` training may use as stills of their expression (training.data):
# only the real smiles. One frame of a neutral photo warped towards anger, fear, sadness or
# contempt looks like some real people's resting face: a model trained with those stills called
# 7 of 21 held-out real neutral photos an expression (docs/real-faces.md).
PEAK_STILLS = {"classes": ["happy"]}


def _fmt(v: float) -> str:
    return f"   {v:.7e}"


def _seq_length(rng) -> int:
    return int(rng.integers(12, 19))


FAINT = "faint happy"  # a plan's name for a faint smile: labelled happy


def _plan(seed: int, face_id: str, neutral: bool, smiles: int = 1, faint: int = 0) -> tuple[bool, list[str]]:
    rng = np.random.default_rng([seed, _id_key(face_id)])
    color = bool(rng.random() < 0.2)
    kinds = [str(k) for k in rng.permutation(KINDS)]
    if not neutral:
        kinds.remove("neutral")
    # Extra smiles, then faint ones, go last, so a tree written with more of them holds the one
    # with fewer as is.
    return color, kinds + ["happy"] * (smiles - 1) + [FAINT] * faint


def _studio(with_studio: bool, backgrounds: tuple, seed: int, face_id: str, k: int):
    """The studio of a person's k-th sequence or video (training.synthesis.studio.draw_for), or None
    for the London studio as photographed."""
    if not with_studio:
        return None
    from training.synthesis import studio

    return studio.draw_for([seed, _id_key(face_id), k], backgrounds)


def _write_identity(args) -> dict:
    london_dir, out, seed, face_id, size, neutral, smiles, faint, threads, with_studio, backgrounds = args
    if threads is not None:
        cv2.setNumThreads(threads)
    out = Path(out)
    color, kinds = _plan(seed, face_id, neutral, smiles, faint)
    subj = f"L{face_id}"
    frames, labels, peaks = 0, [], []
    for k, kind in enumerate(kinds, start=1):
        rng = np.random.default_rng([seed, _id_key(face_id), k])
        n = _seq_length(rng)
        emotion, peak = kind, 1.0
        if kind == FAINT:
            emotion, peak = "happy", faint_smile_peak(london_dir, face_id, rng)
            peaks.append(round(peak, 3))
        labels.append(emotion)
        seq = render_identity_sequence(london_dir, face_id, emotion, n, rng, size=size, color=color, peak=peak,
                                       studio=_studio(with_studio, backgrounds, seed, face_id, k))
        num = f"{k:03d}"
        img_dir = out / "cohn-kanade-images" / subj / num
        img_dir.mkdir(parents=True, exist_ok=True)
        for i, frame in enumerate(seq, start=1):
            cv2.imwrite(str(img_dir / f"{subj}_{num}_{i:08d}.png"), frame)
        emo_dir = out / "Emotion" / subj / num
        emo_dir.mkdir(parents=True, exist_ok=True)
        (emo_dir / f"{subj}_{num}_{len(seq):08d}_emotion.txt").write_text(f"{_fmt(float(CODES[emotion]))}\n")
        frames += len(seq)
    _identity.cache_clear()  # one identity at a time: keep the worker's memory flat
    return {"face_id": face_id, "subject": subj, "frames": frames, "labels": labels, "color": color, "faint_peaks": peaks}


def _per_identity(render, jobs: list, workers: int, progress: bool, describe) -> list[dict]:
    """render(job) for every identity's job, in `workers` processes when > 1 (same bytes either way),
    with a progress line per identity."""
    results, t0 = [], time.monotonic()

    def done(r):
        results.append(r)
        if progress:
            print(f"{describe(r)} ({len(results)}/{len(jobs)}, {time.monotonic() - t0:.0f} s)", file=sys.stderr)

    if workers > 1 and len(jobs) > 1:
        # spawn, not fork: a fork after OpenCV/torch threads have run can hang the child
        with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=multiprocessing.get_context("spawn")) as pool:
            for r in pool.map(render, jobs):
                done(r)
    else:
        for job in jobs:
            done(render(job))
    return results


def write_dataset(
    london_dir, out_dir, seed=0, identities=None, size=(640, 490), neutral=True, smiles: int = 1, faint: int = 0,
    progress=True, workers: int = 1, studio: bool = False, backgrounds=(),
) -> dict:
    """Write the CK+ tree of London Set faces under out_dir: for every identity (or the given
    ids) one sequence per class and, with `neutral`, one neutral sequence (label code 0), in a
    seeded random order. With `smiles` = N > 1, each person's real smile is N happy sequences,
    each under its own camera (framing, light, noise): the real smiles are the set's only real
    expressions, and their peak frames its only real expressive stills. With `faint` = F, F more
    happy sequences per person stop the morph of the real smile where it moves the mouth corners
    by a faint smile's pull (faint_smile_peak), so the peak stills include faint smiles of people
    whose own smile is broad. Subject folders are "L" + face id. Returns a summary dict.
    `workers` > 1 renders identities in that many processes (same bytes either way).
    `studio`: each sequence in a studio of its own (training.synthesis.studio.draw: backdrop, light,
    camera), with `backgrounds` (photo paths) among the backdrops."""
    london_dir = str(Path(london_dir).resolve())
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ids = list_identities(london_dir) if identities is None else [str(i) for i in identities]
    real = sorted(set().union(*(london_people(f"L{i}") for i in ids)))  # a morph needs both of its people
    missing = [i for i in real if not all(p.is_file() for p in _paths(london_dir, i))]
    if missing:
        raise FileNotFoundError(f"London Set identities without neutral photo, template and smile: {missing}")
    size = (int(size[0]), int(size[1]))
    if smiles < 1 or faint < 0:
        raise ValueError("smiles must be at least 1 and faint at least 0")
    jobs = [(london_dir, str(out), seed, i, size, neutral, int(smiles), int(faint), 1 if workers > 1 else None, studio, tuple(backgrounds))
            for i in ids]
    results = _per_identity(_write_identity, jobs, workers, progress, lambda r: f"photoreal: {r['subject']} "
                            f"{len(r['labels'])} sequences, {r['frames']} frames")
    (out / PEAK_STILLS_FILE).write_text(json.dumps(PEAK_STILLS) + "\n")
    per_class = {c: 0 for c in KINDS if neutral or c != "neutral"}
    for r in results:
        for lab in r["labels"]:
            per_class[lab] += 1
    return {
        "identities": len(results),
        "subjects": [r["subject"] for r in results],
        "sequences": sum(len(r["labels"]) for r in results),
        "frames": sum(r["frames"] for r in results),
        "color_identities": sum(r["color"] for r in results),
        "per_class": per_class,
        "seed": seed,
        "smiles": int(smiles),
        "faint_smiles": int(faint),
        "faint_peaks": {r["subject"]: r["faint_peaks"] for r in results if r["faint_peaks"]},
        "size": list(size),
        "studio": bool(studio),
        "backgrounds": len(backgrounds) if studio else 0,
        "attribution": ATTRIBUTION,
    }


# --------------------------------------------------------------------------------------------
# Talking videos (class folders of H.264 MP4s, read by training.data's class-folder loader)
# --------------------------------------------------------------------------------------------

TALK_SIZE = (640, 360)  # 16:9, as phones, webcams and calls film


def _write_talking_identity(args) -> dict:
    london_dir, out, seed, face_id, calm, seconds, threads, with_studio, backgrounds = args
    if threads is not None:
        cv2.setNumThreads(threads)
    from training.video import write_video

    kinds = motion.talking_kinds(CLASSES, calm)
    # the subject is the name up to its first underscore
    paths = [Path(out) / emotion / f"L{face_id}_talk{k:02d}.mp4" for k, emotion in enumerate(kinds, start=1)]
    if all(p.exists() for p in paths):  # the same bytes would come out: a run for more people adds to a set
        return {"face_id": face_id, "labels": kinds, "reused": True}
    color, _ = _plan(seed, face_id, True)
    for k, (emotion, path) in enumerate(zip(kinds, paths), start=1):
        rng = np.random.default_rng([seed, _id_key(face_id), 1000 + k])
        perf = motion.talking_performance(emotion, rng, seconds)
        st = _studio(with_studio, backgrounds, seed, face_id, 1000 + k)
        frames = render_performance(london_dir, face_id, emotion, perf, rng, size=TALK_SIZE, color=color, studio=st)
        # written under a hidden name (which loaders skip) and renamed when whole, so an interrupted
        # run never leaves a truncated video that a later run would take as done
        partial = write_video(path.with_name("." + path.name), frames, fps=motion.TALK_FPS)
        partial.replace(path)
    _identity.cache_clear()
    return {"face_id": face_id, "labels": kinds, "reused": False}


def write_talking_dataset(london_dir, out_dir, seed=0, identities=None, calm: int = 2, seconds=(2.0, 3.0), progress=True,
                          workers: int = 1, studio: bool = False, backgrounds=()) -> dict:
    """Class folders of talking London faces under out_dir (`<class>/L<id>_talkNN.mp4`): per person
    `calm` videos of calm talking (neutral) and one of talking while holding each of the 7
    expressions, `seconds` (2-3 s) long at 30 fps, 640x360, with head turns, nods and blinks (training.synthesis.motion).
    Deterministic per seed and identity, like write_dataset; `studio` and `backgrounds` as there."""
    london_dir = str(Path(london_dir).resolve())
    ids = list_identities(london_dir) if identities is None else [str(i) for i in identities]
    jobs = [(london_dir, str(out_dir), seed, i, int(calm), tuple(seconds), 1 if workers > 1 else None, studio, tuple(backgrounds))
            for i in ids]
    results = _per_identity(_write_talking_identity, jobs, workers, progress, lambda r: f"talking: L{r['face_id']}")
    per_class = {c: sum(r["labels"].count(c) for r in results) for c in KINDS}
    return {"identities": len(results), "reused_identities": sum(r["reused"] for r in results),
            "videos": sum(per_class.values()), "per_class": per_class, "seed": seed,
            "calm": int(calm), "fps": motion.TALK_FPS, "size": list(TALK_SIZE), "studio": bool(studio),
            "attribution": ATTRIBUTION}


# --------------------------------------------------------------------------------------------
# Contact sheet
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _detector():
    from training.faces import FaceDetector

    return FaceDetector()


def _photo_tile(root: Path, subject: str, seq: str, stem: str, tile: int) -> np.ndarray:
    """A colour face crop, framed as the served model's crops are (training.faces: the detector's
    box, 1.2 x; the whole picture where no face is found)."""
    from training.faces import crop_face, full_frame_box, to_gray

    img = cv2.imread(str(root / "cohn-kanade-images" / subject / seq / f"{stem}.png"), cv2.IMREAD_COLOR)
    if img is None:
        return np.full((tile, tile, 3), 255, np.uint8)
    face = _detector()(to_gray(img))
    return crop_face(img, full_frame_box(img.shape) if face is None else face[:3], tile, 1.2)


def write_contact_sheet(dataset_dir, out_png, per_class=6) -> None:
    """training.synthesis.drawn's sheet, one row per class and neutral, with face crops (1.2 x the detector's box)
    and the London Set's CC BY attribution drawn under the rows."""
    from training.synthesis.drawn import write_contact_sheet as sheet

    caption = ("Faces: Face Research Lab London Set. DeBruine, L., & Jones, B. (2017). figshare.",
               "https://doi.org/10.6084/m9.figshare.5047666.v5 - CC BY 4.0. Happy = real smile (morphed);",
               "other expressions are synthetic warps of the neutral photos (training/synthesis/photoreal.py).")
    rows = [(CODES[c], c) for c in CLASSES] + [(0, "neutral")]
    sheet(dataset_dir, out_png, per_class, rows_of=rows, tile_of=_photo_tile, caption=caption, noun="identity")


if __name__ == "__main__":  # python -m training.synthesis.photoreal OUT_DIR [N_IDENTITIES]
    import json

    target = sys.argv[1] if len(sys.argv) > 1 else "data/photoreal"
    london = find_london()
    ids = list_identities(london)
    if len(sys.argv) > 2:
        ids = ids[: int(sys.argv[2])]
    print(json.dumps(write_dataset(london, target, identities=ids), indent=1))
