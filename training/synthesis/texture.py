"""What a warp of a photo cannot make, drawn sparingly over a warped London face at an expression's
current strength: the creases (`texture`: the AU4 furrow between the brows and the lowered brow's
shadow, AU9 nose wrinkles, deeper nasolabial folds, the AU14 dimple, the pressed-lip line, the chin
crease, forehead lines for raised brows) and the inside of an opened mouth (`mouth_interior`: a dark
interior and tongue, upper and lower teeth where the expression shows them).
"""

from __future__ import annotations

import cv2
import numpy as np

from training.synthesis.facs import PhotorealExpression
from training.synthesis.template import LOWER_INNER, UPPER_INNER


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


def texture(img: np.ndarray, p: np.ndarray, ident_scale: tuple, tex: dict, amount: float, side: int) -> np.ndarray:
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
        line(
            [
                c + 0.03 * iod * out - 0.035 * iod * ey,
                c + 0.05 * iod * out + 0.005 * iod * ey,
                c + 0.04 * iod * out + 0.045 * iod * ey,
            ],
            s,
            width=0.02,
        )
        line(
            [c + 0.02 * iod * out - 0.01 * iod * ey, c + 0.035 * iod * out + 0.02 * iod * ey],
            0.6 * s,
            width=0.06,
            soft=True,
        )
    if tex.get("lipline"):
        s = 0.3 * tex["lipline"] * k
        line(_chaikin(p[UPPER_INNER], False), s, width=0.02)
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


def mouth_interior(
    img: np.ndarray, p: np.ndarray, p0: np.ndarray, iod: float, ey, expr: PhotorealExpression, amount: float
) -> np.ndarray:
    """Fill the opening between the inner lip lines (p: current points, p0: neutral) with a dark,
    shaded interior; upper (and lower) teeth where the expression shows them."""
    up, lo = UPPER_INNER, LOWER_INNER
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
