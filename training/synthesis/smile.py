"""How broad a London person's real smile is, and how faint a smile the renderer makes of it.

`mouth_corner_motion` and `corner_pull` measure the real smile by the smile morph's own flow at the
mouth corners; `faint_smile_peak` is the fraction of that morph that moves the corners by a faint
smile's pull (FAINT_PULL), for the faint happy sequences; `resting_corner_lift` is how high the
corners sit in the neutral photo. Used by the data set writer (training.synthesis.photoreal_dataset)
and by the benchmarks that relate smile size to what the model calls happy (benchmarks/smile_size.py).
"""

from __future__ import annotations

import numpy as np

from training.synthesis.identity import load_identity, smile_data
from training.synthesis.london import face_files
from training.synthesis.template import face_frame, read_template


def mouth_corner_motion(london_dir, face_id: str) -> np.ndarray:
    """(2, 2): how far each mouth corner (template points 87, 93) moves from the neutral photo to
    the smiling one, in inter-ocular distances, along (ex: towards the right eye, ey: down the
    face); the median of the smile morph's own flow in a disc of 0.05 iod around the corner.
    A broad smile pulls the corners outwards and up: left (-x, -y), right (+x, -y)."""
    ident = load_identity(str(london_dir), face_id)
    _, flow = smile_data(ident)
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
    pts = read_template(face_files(london_dir, face_id)[1])
    _, iod, _, ey = face_frame(pts)
    mid = (pts[96] + pts[101]) / 2
    return float(np.mean([(mid - pts[c]) @ ey for c in (87, 93)]) / iod)
