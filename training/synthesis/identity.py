"""A London person ready to be animated: `Identity` holds the neutral photo (its border smoothed so
the frame can show more than the photo), the template and the face's axes, the triangulation the warp
uses, and, once needed, the real smile aligned to the neutral photo with the optical flow between the
two (`smile_data`). `load_identity` loads one (cached); a morph's id ("001m017") loads a new face made
of two people.

How the smile is aligned: an eye-and-brow patch of the neutral photo is found in the smiling one by
template matching (after a global phase-correlation shift), the two matches fix a similarity
transform, and DIS optical flow gives the dense correspondence that the happy sequences morph along.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from training.synthesis.london import MORPH_ID, face_files, id_key
from training.synthesis.template import face_frame, read_template
from training.synthesis.warp import border_ring, pwa_warp, triangulate


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
class Identity:
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


def _make_identity(face_id: str, img: np.ndarray, pts: np.ndarray, smile_path: Path | None) -> Identity:
    eye, iod, ex, ey = face_frame(pts)
    h, w = img.shape[:2]
    ring = border_ring(w, h)
    tris, canon = triangulate(pts, ring, iod, ey)
    (x0, y0), (x1, y1) = pts[[164, 46]].min(0).astype(int), pts[[167, 160]].max(0).astype(int)
    skin = float(cv2.cvtColor(img[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY).mean())
    return Identity(face_id, _smooth_border(img), pts, tris, ring, smile_path, iod, eye, ex, ey, canon, skin)


@lru_cache(maxsize=4)
def load_identity(london_dir: str, face_id: str) -> Identity:
    if MORPH_ID.match(face_id):
        return _morph_identity(london_dir, face_id)
    img_p, tem_p, smile_p = face_files(london_dir, face_id)
    img = cv2.imread(str(img_p), cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f"cannot read {img_p}")
    return _make_identity(face_id, img, read_template(tem_p), smile_p)


def _morph_identity(london_dir: str, face_id: str) -> Identity:
    """A face made of two: the second person's photo is moved onto the first's by a similarity on
    all 189 points, the shape is the points' weighted mean, and both photos (neutral and the aligned
    smile alike) are warped onto that shape and cross-dissolved; weight w of the second person
    (0.3-0.45, a fixed draw per pair) keeps the face mostly the first's, so two morphs of one person
    are different people."""
    first, second = MORPH_ID.match(face_id).groups()
    a, b = load_identity(london_dir, first), load_identity(london_dir, second)
    w = float(np.random.default_rng([id_key(face_id), 7]).uniform(0.3, 0.45))
    m, _ = cv2.estimateAffinePartial2D(b.pts.astype(np.float32), a.pts.astype(np.float32))
    h, wd = a.neutral.shape[:2]
    b_pts = b.pts @ m[:, :2].T + m[:, 2]
    shape = (1 - w) * a.pts + w * b_pts
    ring = border_ring(wd, h)

    def onto_shape(img, pts, tris):
        return pwa_warp(img, np.vstack([pts, ring]), np.vstack([shape, ring]), tris)

    def b_aligned(img):
        return cv2.warpAffine(img, m, (wd, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    neutral = cv2.addWeighted(
        onto_shape(a.neutral, a.pts, a.tris), 1 - w, onto_shape(b_aligned(b.neutral), b_pts, b.tris), w, 0
    )
    ident = _make_identity(face_id, neutral, shape, None)
    # the smiles, each aligned to its own neutral photo, go through the same warps: the morph's smile
    smile = cv2.addWeighted(
        onto_shape(smile_data(a)[0], a.pts, a.tris), 1 - w, onto_shape(b_aligned(smile_data(b)[0]), b_pts, b.tris), w, 0
    )
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


def _align_smile(ident: Identity, smile: np.ndarray) -> np.ndarray:
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


def smile_data(ident: Identity) -> tuple[np.ndarray, np.ndarray]:
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


def _smile_flow(ident: Identity, aligned: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the aligned smile, DIS flow neutral -> smile)."""
    ng = cv2.cvtColor(ident.neutral, cv2.COLOR_BGR2GRAY)
    sg = cv2.cvtColor(aligned, cv2.COLOR_BGR2GRAY)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return aligned, dis.calc(ng, sg, None)


def smile_points(ident: Identity, t: float) -> np.ndarray:
    """Where the template points are in the smile morph at fraction t: each carried by t x the flow."""
    _, flow = smile_data(ident)
    h, w = flow.shape[:2]
    xi = np.clip(np.round(ident.pts[:, 0]).astype(int), 0, w - 1)
    yi = np.clip(np.round(ident.pts[:, 1]).astype(int), 0, h - 1)
    return ident.pts + t * flow[yi, xi].astype(np.float64)
