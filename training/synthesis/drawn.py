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
* Expressions follow Ekman & Friesen's prototypes as AU combinations (see facs.DRAWN_EMOTIONS; each
  AU's point motion is commented in facs.DRAWN_AU), with the texture cues the AUs create, because at
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

Where it is
-----------
This module draws each sequence's expression from the FACS tables (training.synthesis.facs), builds
the scene around the face (background, body, pose, light, camera) and renders sequences and
performances. Who a face is and its 68 points: training.synthesis.drawn_face; painting it:
training.synthesis.drawn_paint; speech's mouth shapes: training.synthesis.speech; the CK+ tree and
the talking videos on disk: training.synthesis.drawn_dataset.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from training.synthesis.drawn_face import Subject, neutral_shape, uniform
from training.synthesis.drawn_paint import X0, Y0, canvas_px, col, draw_face, make_look, paint, shade
from training.synthesis.facs import CLASSES, DRAWN_EMOTIONS, SIDE, DrawnExpression, drawn_au_disp
from training.synthesis.motion import ease
from training.synthesis.speech import drawn_speech_disp

# --------------------------------------------------------------------------------------------
# Expressions: a sequence's peak drawn from the FACS tables, and blinks
# --------------------------------------------------------------------------------------------


def expression(s: Subject, emotion: str, rng: np.random.Generator) -> DrawnExpression:
    """The peak of one sequence: prototype AUs, scaled by a per-sequence intensity in [0.6, 1],
    the subject's own gain per AU and a little per-sequence variation."""
    aus, tex = DRAWN_EMOTIONS[emotion]
    aus = dict(aus)
    intensity = uniform(rng, 0.6, 1.0)
    gain = dict(s.au_gain)
    side = int(rng.choice([-1, 1]))
    if emotion == "happy" and rng.random() < 0.7:  # most CK+ smiles part the lips
        aus.update({"AU25": 1.3, "AU26": 0.3})
    if emotion == "surprise":
        aus["AU27"] = uniform(rng, 0.4, 1.0)
    disp = np.zeros((68, 2))
    for au, w in aus.items():
        disp += drawn_au_disp(au) * w * gain[au] * uniform(rng, 0.85, 1.15)
    if emotion == "contempt":
        # One corner only; the midline points follow halfway.
        disp *= np.where(side == SIDE, 1.0, np.where(SIDE == 0, 0.3, 0.0))[:, None]
    tex = {k: v * intensity for k, v in tex.items()}
    return DrawnExpression(disp * intensity, tex, side)


def blend(a: DrawnExpression, b: DrawnExpression, rng) -> DrawnExpression:
    """A non-prototypic mix (CK+'s unlabelled sequences are expressions no prototype fits)."""
    wa, wb = uniform(rng, 0.3, 0.7), uniform(rng, 0.3, 0.7)
    tex = {k: wa * a.tex.get(k, 0) + wb * b.tex.get(k, 0) for k in set(a.tex) | set(b.tex)}
    return DrawnExpression(wa * a.disp + wb * b.disp, tex, a.side)


def _blink(p: np.ndarray, closed: float) -> np.ndarray:
    """Upper lids moved down onto the lower lids by `closed` (0 open .. 1 shut)."""
    p = p.copy()
    for up, low in ((37, 41), (38, 40), (43, 47), (44, 46)):
        p[up] += (p[low] - p[up]) * closed * 0.92
    return p


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
    a, b = col(s.bg_colors[0], nch), col(s.bg_colors[1], nch)
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
    edge = top + ppu * (0.32 * np.abs(xs) ** 1.6) + ppu * 0.08 * np.exp(-((xs / 0.16) ** 2))
    poly = np.vstack(
        [np.stack([cx + xs * sw, edge], 1), [[cx + sw, h + 10], [cx - sw, h + 10], [cx - sw * 1.4, h + 10]]]
    )
    poly = np.vstack([[[cx - sw * 1.4, top + 0.6 * ppu]], poly])
    layer = np.zeros((h, w, nch + 1), np.float32)
    paint(layer, [poly], col(s.shirt, nch), blur=1.0)
    # a fold shadow at the neckline
    shade(
        layer,
        [np.stack([cx + xs * sw * 0.3, top + ppu * 0.1 + ppu * 0.08 * np.exp(-((xs * 0.3 / 0.16) ** 2))], 1)],
        -0.3,
        blur=ppu * 0.02,
        width=ppu * 0.02,
        closed=False,
    )
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
        m = np.array(
            [[ca, -sa, tx - ca * c_canvas[0] + sa * c_canvas[1]], [sa, ca, ty - sa * c_canvas[0] - ca * c_canvas[1]]]
        )
        poses.append(m)
    return (ox, oy), poses


def _make_scene(s: Subject, size, nch, n, rng, studio=None) -> tuple[_Scene, float]:
    """The frame around the face. `studio` (training.synthesis.studio): its backdrop replaces the
    subject's own (drawn all the same, so the rest of the draws are what they were)."""
    w, h = size
    ppu = s.scale * h * uniform(rng, 0.97, 1.03)
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
    c = s.contrast * uniform(rng, 0.96, 1.04)
    gain = ((1 + s.light_grad * ramp) * s.brightness * uniform(rng, 0.95, 1.05) * c).astype(np.float32)[..., None]
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
        face = cv2.warpAffine(
            canvas,
            mm,
            (int(x1 - x0), int(y1 - y0)),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
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


def _blinks(n_frames: int, curve: np.ndarray, rng) -> np.ndarray:
    """Lid closure per frame: sometimes a blink, only where the face is still (near) neutral."""
    closed = np.zeros(n_frames)
    calm = np.flatnonzero((curve < 0.05) & (np.arange(n_frames) > 0) & (np.arange(n_frames) < n_frames - 1))
    if len(calm) and rng.random() < 0.35:
        i = int(rng.choice(calm))
        closed[i] = uniform(rng, 0.7, 1.0)
        if i + 1 < n_frames - 1 and curve[i + 1] < 0.2:
            closed[i + 1] = closed[i] * 0.4
    return closed


def _film(frames: list[np.ndarray], studio) -> list[np.ndarray]:
    """The frames through the studio camera's tone curve, vignette and noise (none without a studio)."""
    if studio is None:
        return frames
    from training.synthesis.studio import camera_frame

    return [camera_frame(f, studio.camera, i) for i, f in enumerate(frames)]


def render(s: Subject, expr: DrawnExpression, n_frames: int, rng, size, color: bool, onset: int | None, studio=None):
    if n_frames < 2:
        raise ValueError("a sequence needs at least 2 frames (neutral first, peak last)")
    w, h = size
    if onset is None:
        onset = int(rng.integers(1, min(4, n_frames - 1) + 1))
    onset = int(np.clip(onset, 1, n_frames - 1))
    nch = 3 if color else 1
    scene, ppu = _make_scene(s, (w, h), nch, n_frames, rng, studio)
    look = make_look(s, ppu, nch, rng)
    curve = ease(n_frames, onset)
    closed = _blinks(n_frames, np.zeros(n_frames) if expr.neutral else curve, rng)
    p0 = neutral_shape(s)
    jitter = rng.normal(0, 0.0012, (n_frames, 68, 2)).cumsum(0) * 0.5  # tiny natural motion
    frames, marks = [], []
    for i in range(n_frames):
        p = _blink(p0 + curve[i] * expr.disp + jitter[i], closed[i])
        tex = {k: v * curve[i] for k, v in expr.tex.items()}
        canvas = draw_face(look, p, tex, expr.side)
        m = scene.poses[i]
        frames.append(_compose(scene, canvas, m, rng))
        pts = canvas_px(look, p)
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
    if emotion not in DRAWN_EMOTIONS:
        raise ValueError(f"unknown emotion {emotion!r}; expected one of {CLASSES + ('neutral',)}")
    expr = expression(subject, emotion, rng)
    expr.neutral = emotion == "neutral"
    return render(subject, expr, n_frames, rng, size, color, onset_frames, studio)


# --------------------------------------------------------------------------------------------
# Performances: a drawn face that talks, turns, blinks and shows an expression as it comes and goes
# (the tracks come from training.synthesis.motion, shared with the photo-real renderer)
# --------------------------------------------------------------------------------------------


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
    if emotion not in DRAWN_EMOTIONS:
        raise ValueError(f"unknown emotion {emotion!r}; expected one of {CLASSES + ('neutral',)}")
    n = len(perf)
    nch = 3 if color else 1
    scene, ppu = _make_scene(subject, size, nch, n, rng, studio)
    look = make_look(subject, ppu, nch, rng)
    expr = expression(subject, emotion, rng)
    p0 = neutral_shape(subject)
    depth, centre = _depth(p0), np.array([0.0, 0.5 * p0[51, 1]])
    origin = (
        canvas_px(look, (0.0, 0.0)) @ scene.poses[0][:, :2].T + scene.poses[0][:, 2]
    )  # the face origin in the frame
    frames, marks = [], []
    for i in range(n):
        c = float(perf.intensity[i]) if emotion != "neutral" else 0.0
        p = p0 + c * expr.disp + drawn_speech_disp(float(perf.jaw[i]), float(perf.spread[i]), float(perf.press[i]))
        p = _turn(_blink(p, float(perf.blink[i])), depth, float(perf.yaw[i]), float(perf.pitch[i]), centre)
        canvas = draw_face(look, p, {k: v * c for k, v in expr.tex.items()}, expr.side)
        head = cv2.getRotationMatrix2D((float(origin[0]), float(origin[1])), float(perf.roll[i]), float(perf.scale[i]))
        head[:, 2] += perf.shift[i] * ppu
        m = head @ np.vstack([scene.poses[0], [0, 0, 1]])
        frames.append(_compose(scene, canvas, m, rng))
        marks.append((canvas_px(look, p) @ m[:, :2].T + m[:, 2]).astype(np.float32))
    return _film(frames, studio), marks
