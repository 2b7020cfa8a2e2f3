"""The London Set's face template: the 189 points (PsychoMorph .tem) marked on every neutral photo,
and what the photo-real renderer needs to know about them.

`read_template` reads a .tem file; `TEMPLATE_PARTS` names the points; `MIRROR` and `MIDLINE` say which
point mirrors which across the face (an AU table lists one side only); `LIDS`, `UPPER_INNER`,
`LOWER_INNER` and `CHAINS` are the lids and lips a warp must keep open, closed or in order; the
irises and pupils (`NOT_WARPED`) are never warped; `face_frame` is the face's own axes (from the
pupils), in which the FACS tables are written.

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
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

N_POINTS = 189


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
MIRROR = dict(
    [(18, 27), (19, 26), (20, 25), (21, 24), (22, 23), (28, 33), (29, 32), (30, 31)]
    + [(34, 43), (35, 42), (36, 41), (37, 40), (38, 39), (44, 49), (45, 48), (46, 47)]
    + [(71, 82), (72, 81), (73, 80), (74, 79), (75, 78), (76, 77), (83, 86), (84, 85)]
    + [(50, 56), (51, 57), (52, 58), (53, 59), (54, 60)]
    + [(61, 66), (62, 67), (63, 68), (64, 69), (65, 70), (179, 182), (180, 181)]
    + [(87, 93), (88, 92), (89, 91), (94, 98), (95, 97), (99, 103), (100, 102), (104, 108), (105, 107)]
    + [(158, 161), (159, 162), (160, 163), (164, 167), (165, 168), (166, 169), (170, 172), (171, 173), (176, 178)]
    + [(125, 133), (126, 132), (127, 131), (128, 130), (183, 184)]
)
MIDLINE = {55, 90, 96, 101, 106, 174, 175, 177, 129}
NOT_WARPED = set(range(18))  # pupils and irises: the lids move over them, they do not
UPPER_INNER = [87, 94, 95, 96, 97, 98, 93]
LOWER_INNER = [87, 99, 100, 101, 102, 103, 93]
LIDS = [(19, 28), (20, 29), (21, 30), (24, 31), (25, 32), (26, 33)]  # (upper, lower) pairs
# Top-to-bottom chains whose order a warp must keep (brow, lid crease, upper lid, lower lid;
# outer lip, inner lips, outer lip, chin): a point pushed past the next one drags it along.
CHAINS = [
    (83, 34),
    (83, 35),
    (83, 36),
    (84, 36),
    (84, 37),
    (84, 38),
    (76, 38),  # brow -> lid crease
    (86, 43),
    (86, 42),
    (86, 41),
    (85, 41),
    (85, 40),
    (85, 39),
    (77, 39),
    (35, 19, 28),
    (36, 20, 29),
    (37, 21, 30),
    (42, 26, 33),
    (41, 25, 32),
    (40, 24, 31),  # crease -> lids
    (88, 94, 99, 104),
    (89, 95, 100, 105),
    (90, 96, 101, 106, 177, 174, 175, 129),
    (91, 97, 102, 107),
    (92, 98, 103, 108),
]


def read_template(path) -> np.ndarray:
    """(189, 2) float64 x, y pixel points of a PsychoMorph .tem file."""
    lines = Path(path).read_text().split("\n")
    n = int(lines[0].split()[0])
    pts = np.array([[float(v) for v in line.split()[:2]] for line in lines[1 : 1 + n]], dtype=np.float64)
    if pts.shape != (n, 2) or n != N_POINTS:
        raise ValueError(f"{path}: expected {N_POINTS} points, got {pts.shape}")
    return pts


def face_frame(pts):
    e0, e1 = pts[0], pts[1]
    iod = float(np.hypot(*(e1 - e0)))
    ex = (e1 - e0) / iod
    ey = np.array([-ex[1], ex[0]])
    return (e0 + e1) / 2, iod, ex, ey
