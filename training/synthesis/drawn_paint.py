"""Painting a drawn face: every feature drawn from the face's 68 points (splines through them) on a
canvas in face coordinates, at the face's final pixel scale (`canvas_px`: face units -> canvas
pixels).

The canvas is premultiplied colour + alpha (`draw_face`), over the hair behind the head, the neck
and the ears that `make_look` prepares once per sequence; training.synthesis.drawn warps it into
the frame. Shapes are cv2 anti-aliased polygons in small regions of interest, and soft shading is
drawn at low resolution and blurred, so a 640x490 frame costs a few milliseconds. Shading is what
makes a classical detector (Haar cascade) see a face: dark eye sockets, brows and lashes against
lighter cheeks and forehead, a light nose bridge between the eyes, a dark mouth line and nostrils,
a darker rim around the face. Wrinkles, folds, dimples and teeth are the texture cues of an
expression (training.synthesis.facs), drawn at their current strength.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from training.synthesis.drawn_face import Subject, neutral_shape

# Canvas extent in face units: wide enough for hair, tall enough for the neck under the chin.
X0, X1, Y0, Y1 = -0.9, 0.9, -0.85, 1.05
SHIFT = 4  # sub-pixel bits for cv2 drawing
GRAY_WEIGHTS = np.array([0.114, 0.587, 0.299], np.float32)  # BGR -> gray, as cv2


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


def paint(img, polys, color, alpha=1.0, blur=0.0, width=0.0, closed=True) -> None:
    """Premultiplied 'over': img (H, W, C+1) gets colour (C,) with coverage alpha*mask."""
    box, a = _mask_in(img, polys, width, closed, blur)
    if box is None:
        return
    x0, y0, x1, y1 = box
    roi = img[y0:y1, x0:x1]
    roi += (np.append(color, 1.0).astype(np.float32) - roi) * (a * alpha)[..., None]


def shade(img, polys, amount, blur=0.0, width=0.0, closed=True) -> None:
    """Multiply the colour under a soft shape by (1 + amount): < 0 darkens, > 0 lightens."""
    if abs(amount) < 1e-3:
        return
    box, a = _mask_in(img, polys, width, closed, blur)
    if box is None:
        return
    x0, y0, x1, y1 = box
    img[y0:y1, x0:x1, :-1] *= (1 + amount * a)[..., None]


def col(bgr, nch: int) -> np.ndarray:
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


def canvas_px(look: _Look, u) -> np.ndarray:
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
    px = [canvas_px(look, p) for p in polys]
    box, a = _mask_in(layer, px, blur=look.ppu * 0.006)
    x0, y0, x1, y1 = box
    hair = col(look.s.hair, look.nch)
    tex = 1 + strands[y0:y1, x0:x1]
    crown = canvas_px(look, (0.12, -look.s.skull_height * 0.85))
    yy, xx = np.mgrid[y0:y1, x0:x1]
    shine = 0.08 + 0.25 * (1 - float(hair.mean()) / 255)  # light hair would burn out
    sheen = 1 + shine * np.exp(-(((xx - crown[0]) ** 2 + (yy - crown[1]) ** 2) / (2 * (0.12 * look.ppu) ** 2)))
    layer[y0:y1, x0:x1, :-1] = np.clip(hair * (tex * sheen)[..., None], 0, 255) * a[..., None]
    layer[y0:y1, x0:x1, -1] = a
    return layer


def make_look(s: Subject, ppu: float, nch: int, rng) -> _Look:
    detail = np.random.default_rng(s.detail_seed + 1).uniform(-1, 1, 64)
    h, w = _canvas_shape(ppu)
    look = _Look(
        s,
        ppu,
        nch,
        col(s.skin, nch),
        col(s.lips, nch),
        col(s.brows, nch),
        col(s.iris, nch),
        rng.normal(0, 0.006, 2),
        np.zeros((h, w, nch + 1), np.float32),
        None,
        None,
        detail,
    )
    p0 = neutral_shape(s)
    back_polys, front_polys = _hair_polys(s, p0)
    look.back = _hair_layer(look, back_polys, rng)
    # Neck: a column under the jaw, in the shade of the head.
    nw = s.jaw_width * 0.66
    neck = np.array([[-nw, 0.25], [-nw * 1.12, Y1 + 0.05], [nw * 1.12, Y1 + 0.05], [nw, 0.25]])
    paint(look.back, [canvas_px(look, neck)], look.skin * 0.9, blur=ppu * 0.004)
    for side in (-1, 1):  # the neck is round: its sides turn away from the light
        shade(
            look.back,
            [canvas_px(look, np.array([[side * nw, 0.3], [side * nw * 1.1, Y1]]))],
            -0.25,
            blur=ppu * 0.04,
            width=ppu * 0.08,
            closed=False,
        )
    # Ears at the jaw's top ends, a little darker than the face.
    for side in (-1, 1):
        ear = _ellipse((side * (s.jaw_width + 0.012), 0.06), 0.045, 0.11, side * 0.15)
        paint(look.back, [canvas_px(look, ear)], look.skin * 0.86, blur=ppu * 0.004)
        shade(
            look.back,
            [canvas_px(look, _ellipse((side * (s.jaw_width + 0.018), 0.06), 0.02, 0.06))],
            -0.25,
            blur=ppu * 0.012,
        )
    look.front = _hair_layer(look, front_polys, rng)
    look.front_box = _roi(look.front, [canvas_px(look, np.vstack(front_polys))], 4) if front_polys else None
    # Skin is not plastic: faint blotches, the same for the person whatever the scale.
    blotches = np.random.default_rng(s.detail_seed + 2).standard_normal((38, 36)).astype(np.float32)
    look.mottle = 1 + 0.03 * cv2.GaussianBlur(
        cv2.resize(blotches, (w, h), interpolation=cv2.INTER_CUBIC), (0, 0), ppu * 0.01
    )
    return look


def _draw_head(cv, look: _Look, p) -> None:
    s, ppu = look.s, look.ppu
    # Shadow the jaw casts on the neck.
    jaw_px = canvas_px(look, p[2:15])
    shade(cv, [np.vstack([jaw_px, canvas_px(look, p[14:1:-1] + (0, 0.08))])], -0.35, blur=ppu * 0.02)
    outline = canvas_px(look, np.vstack([_spline(p[0:17], 6), _skull(s, p)[1:-1]]))
    paint(cv, [outline], look.skin, blur=ppu * 0.003)
    # Roundness: darker towards the rim of the face.
    box, m = _mask_in(cv, [outline], blur=ppu * 0.07)
    if box is not None:
        x0, y0, x1, y1 = box
        cv[y0:y1, x0:x1, :-1] *= ((0.6 + 0.4 * np.clip(m * 1.25, 0, 1)) * look.mottle[y0:y1, x0:x1])[..., None]


def _draw_shading(cv, look: _Look, p, tex) -> None:
    """Soft light and shadow that give the face relief (and the Haar features their contrast)."""
    ppu, s = look.ppu, look.s
    px = lambda u: canvas_px(look, u)  # noqa: E731
    brow_y = p[17:27, 1].mean()
    shade(cv, [px(_ellipse((0, brow_y - 0.17), 0.24, 0.1))], 0.14, blur=ppu * 0.06)  # forehead highlight
    for side, eye, brow in ((-1, p[36:42], p[17:22]), (1, p[42:48], p[22:27])):
        ec = eye.mean(0)
        # eye socket: the darkest broad area of a face under top light
        socket = _ellipse((ec[0] + side * 0.01, (ec[1] + brow[:, 1].mean()) / 2 + 0.012), s.eye_w * 1.45, 0.062)
        shade(cv, [px(socket)], -0.42, blur=ppu * 0.028)
        shade(cv, [px(_ellipse(ec + (0, 0.045), s.eye_w * 1.1, 0.02))], -0.12, blur=ppu * 0.02)  # under-eye
        cheek = 0.13 - 0.035 * tex.get("cheek", 0)
        shade(cv, [px(_ellipse((side * 0.19, cheek), 0.085, 0.06))], 0.12 + 0.1 * tex.get("cheek", 0), blur=ppu * 0.04)
        # side of the nose, under the inner corner of the eye
        nose_side = np.array([[side * 0.03, 0.02], [side * 0.05, 0.1], [side * 0.065, p[31, 1] - 0.02]])
        shade(cv, [px(nose_side)], -0.2, blur=ppu * 0.014, width=ppu * 0.03, closed=False)
        shade(cv, [px(_ellipse((side * 0.33, 0.0), 0.07, 0.18))], -0.15, blur=ppu * 0.05)  # temples
    shade(
        cv,
        [px(np.array([[0, p[27, 1] - 0.04], [0, p[30, 1]]]))],
        0.16,
        blur=ppu * 0.012,
        width=ppu * 0.03,
        closed=False,
    )
    shade(cv, [px(_ellipse(p[30] + (0, -0.005), 0.025, 0.02))], 0.14, blur=ppu * 0.012)  # nose tip
    shade(cv, [px(_ellipse(p[33] + (0, 0.018), 0.05, 0.014))], -0.22, blur=ppu * 0.012)  # under the nose
    shade(cv, [px(_ellipse(p[57] + (0, 0.03), 0.07, 0.018))], -0.22, blur=ppu * 0.014)  # under the lower lip
    shade(cv, [px(_ellipse(p[8] + (0, -0.07), 0.07, 0.04))], 0.1, blur=ppu * 0.03)  # chin


def _line(cv, look, pts_u, strength, width=0.006, blur=0.004, amount=-0.45) -> None:
    """A crease: a thin soft dark line (scaled by its texture strength)."""
    if strength > 0.02:
        shade(
            cv,
            [canvas_px(look, _spline(pts_u, 6))],
            amount * min(strength, 1.3),
            blur=look.ppu * blur,
            width=max(1.0, look.ppu * width),
            closed=False,
        )


def _forehead_lines(cv, look: _Look, p, tex) -> None:
    """Raised brows fold the forehead: full-width lines for AU1+2, central ones for AU1 alone."""
    d = look.detail
    brow_y = min(p[17:27, 1].min(), p[19, 1])
    for k, dy in enumerate((0.045, 0.08, 0.115)):
        y = brow_y - dy + 0.005 * d[k]
        xs = np.linspace(-0.22, 0.22, 5)
        _line(
            cv,
            look,
            np.stack([xs, y + 0.012 * (xs / 0.22) ** 2], 1),
            tex.get("forehead", 0) * (1 - 0.2 * k),
            width=0.005,
        )
        xs = np.linspace(-0.11, 0.11, 4)
        _line(
            cv,
            look,
            np.stack([xs, y + 0.01 + 0.014 * (xs / 0.11) ** 2], 1),
            tex.get("forehead_c", 0) * (1 - 0.25 * k),
            width=0.005,
        )


def _glabella_lines(cv, look: _Look, p, tex) -> None:
    """AU4 bunches the skin between the brows into vertical lines (older faces show them faintly)."""
    g = tex.get("glabella", 0) + 0.15 * look.s.age_lines
    mid = (p[21] + p[22]) / 2
    for side in (-1, 1):
        x = mid[0] + side * (0.014 + 0.003 * look.detail[3])
        _line(
            cv,
            look,
            [(x - side * 0.002, mid[1] - 0.02), (x, mid[1] + 0.015), (x + side * 0.004, mid[1] + 0.045)],
            g,
            width=0.006,
        )


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
        shade(cv, [canvas_px(look, bulge)], 0.12 * min(n, 1), blur=look.ppu * 0.02, width=look.ppu * 0.03, closed=False)


def _eye_wrinkles(cv, look: _Look, p, tex) -> None:
    """AU6: crow's feet fanning from the outer eye corners, and the raised lower-lid bulge."""
    age = look.s.age_lines
    for side, corner, lower in ((-1, p[36], p[[39, 40, 41, 36]]), (1, p[45], p[[42, 47, 46, 45]])):
        for ang in (-0.45, 0.0, 0.45):
            a = ang + 0.1 * look.detail[5]
            start = corner + (side * 0.02, 0)
            _line(
                cv,
                look,
                [start, start + (side * 0.04 * np.cos(a), 0.04 * np.sin(a))],
                (tex.get("crow", 0) + 0.2 * age) * 0.8,
                width=0.004,
            )
        _line(cv, look, lower + (0, 0.022), tex.get("bags", 0) + 0.2 * age, width=0.006, blur=0.005, amount=-0.3)


def _chin_wrinkles(cv, look: _Look, p, tex) -> None:
    """AU17: the chin boss dimples (orange-peel skin) and the fold under the lower lip deepens."""
    ch = tex.get("chin", 0)
    _line(cv, look, [p[59] + (0, 0.03), p[57] + (0, 0.035), p[55] + (0, 0.03)], ch, width=0.008, blur=0.008)
    d = look.detail
    for k in range(4):
        c = p[8] + (0.05 * d[10 + k], -0.06 + 0.02 * d[20 + k])
        shade(cv, [canvas_px(look, _ellipse(c, 0.012, 0.008))], -0.25 * ch, blur=look.ppu * 0.006)


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
        poly = canvas_px(look, np.vstack([upper, lower[::-1]]))
        paint(cv, [poly], look.brows, alpha=0.9, blur=look.ppu * 0.004)


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
    shade(cv, [canvas_px(look, crease)], -0.28, blur=ppu * 0.004, width=max(1.0, ppu * 0.006), closed=False)
    shade(cv, [canvas_px(look, np.vstack([crease, upper[::-1]]))], -0.12, blur=ppu * 0.006)
    opening = np.vstack([upper, lower[::-1]])
    height = (lower[:, 1] - upper[:, 1]).max()
    if height > 0.008:
        box, m = _mask_in(cv, [canvas_px(look, opening)], blur=ppu * 0.0015)
        if box is not None:
            _draw_eyeball(cv, look, eye6, box, m, upper)
    # lash line on the upper lid, a fainter line on the lower
    paint(
        cv,
        [canvas_px(look, upper)],
        look.brows * 0.6,
        alpha=0.9,
        blur=ppu * 0.002,
        width=max(1.0, ppu * 0.011),
        closed=False,
    )
    shade(cv, [canvas_px(look, lower)], -0.3, blur=ppu * 0.003, width=max(1.0, ppu * 0.004), closed=False)


def _draw_eyeball(cv, look: _Look, eye6, box, m, upper) -> None:
    """Sclera, iris, pupil and catch light, clipped to the lid opening."""
    ppu = look.ppu
    x0, y0, x1, y1 = box
    roi = cv[y0:y1, x0:x1]
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    centre = (eye6[0] + eye6[3]) / 2 + look.gaze
    c = canvas_px(look, centre)
    r = 0.39 * look.s.eye_w * ppu
    d = np.hypot(xx - c[0], yy - c[1])
    sclera = (
        col((200, 205, 212), look.nch) * (0.85 + 0.15 * np.clip(1 - np.abs(xx - c[0]) / (2.2 * r), 0, 1))[..., None]
    )
    iris = np.clip(r + 0.5 - d, 0, 1)
    limbus = 1 - 0.45 * np.clip((d - 0.7 * r) / (0.3 * r), 0, 1)  # darker rim of the iris
    pupil = np.clip(0.42 * r + 0.5 - d, 0, 1)
    colour = sclera * (1 - iris)[..., None] + (look.iris * limbus[..., None]) * iris[..., None]
    colour = colour * (1 - pupil)[..., None] + 8 * pupil[..., None]
    glint = np.clip(0.16 * r + 0.5 - np.hypot(xx - c[0] + 0.35 * r, yy - c[1] + 0.35 * r), 0, 1)
    colour = colour + (235 - colour) * (0.85 * glint)[..., None]
    # the upper lid shades the top of the eyeball
    lid_y = np.interp(xx, *_sorted_xy(canvas_px(look, upper)))
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
        shade(cv, [canvas_px(look, _ellipse(c, 0.5 * abs(p[33, 0] - wing[0]), 0.011, ang))], -0.6, blur=ppu * 0.005)
        # the crease round the nostril wing
        arc = _ellipse(wing + (side * 0.004, -0.018), 0.022, 0.024, 0, 24)
        keep = (arc[:, 0] - wing[0]) * side > -0.004
        shade(
            cv,
            [canvas_px(look, arc[keep][np.argsort(arc[keep][:, 1])])],
            -0.3,
            blur=ppu * 0.005,
            width=max(1.0, ppu * 0.006),
            closed=False,
        )


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
    paint(cv, [canvas_px(look, upper)], look.lips * 0.82, blur=ppu * 0.004)
    paint(cv, [canvas_px(look, lower)], look.lips, blur=ppu * 0.005)
    shade(
        cv,
        [canvas_px(look, _ellipse(p[57] + (0, -0.45 * (p[57, 1] - p[66, 1])), 0.035, 0.008))],
        0.15,
        blur=ppu * 0.008,
    )  # lower lip sheen
    # the line between the lips and the shadowed corners
    shade(cv, [canvas_px(look, up_in)], -0.6, blur=ppu * 0.003, width=max(1.0, ppu * 0.006), closed=False)
    for corner in (p[60], p[64]):
        shade(cv, [canvas_px(look, _ellipse(corner, 0.01, 0.007))], -0.45, blur=ppu * 0.005)


def _draw_mouth_inside(cv, look: _Look, p, inner, up_in, low_in, gap, tex) -> None:
    """Dark mouth cavity, upper teeth below the upper lip, a hint of lower teeth when wide."""
    ppu = look.ppu
    box, m = _mask_in(cv, [canvas_px(look, inner)], blur=ppu * 0.002)
    if box is None:
        return
    x0, y0, x1, y1 = box
    roi = cv[y0:y1, x0:x1]
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    dark = col((30, 30, 55), look.nch)
    colour = np.broadcast_to(dark, roi.shape[:2] + (look.nch,)).copy()
    teeth = tex.get("teeth", 0)
    if teeth > 0.05:
        top = np.interp(xx, *_sorted_xy(canvas_px(look, up_in)))
        bottom = np.interp(xx, *_sorted_xy(canvas_px(look, low_in)))
        cx = canvas_px(look, (p[62] + p[66]) / 2)[0]
        half = abs(canvas_px(look, p[64])[0] - canvas_px(look, p[60])[0]) / 2 + 1e-3
        band = 0.034 * ppu  # visible height of the upper incisors
        upper_t = np.clip((top + band - yy) / (0.004 * ppu + 1), 0, 1)
        lower_t = np.clip((yy - (bottom - 0.012 * ppu)) / (0.004 * ppu + 1), 0, 1) * 0.6 * (gap > 0.03)
        t = np.clip(upper_t + lower_t, 0, 1) * min(1.0, teeth * 1.5)
        # the corners of the mouth are in shadow; faint gaps between teeth
        fall = np.clip(1.15 - (np.abs(xx - cx) / half) ** 2, 0.25, 1)
        gaps = 1 - 0.18 * (np.cos(2 * np.pi * (xx - cx) / (0.028 * ppu)) > 0.9)
        tooth = col((205, 215, 222), look.nch) * (fall * gaps)[..., None]
        colour = colour * (1 - t)[..., None] + tooth * t[..., None]
        colour *= (1 - 0.35 * np.exp(-np.clip(yy - top, 0, None) / (0.006 * ppu)))[..., None]  # lip shadow on teeth
    roi += (np.concatenate([colour, np.ones_like(m)[..., None]], -1) - roi) * m[..., None]


def draw_face(look: _Look, p, tex, side: int = 1) -> np.ndarray:
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
