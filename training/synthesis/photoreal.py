"""Photo-real CK+-style expression sequences from real faces (the Face Research Lab London Set).

The drawn faces of `training.synthesis.drawn` teach a model what an expression *is*, but not what a real
face looks like. This module turns the London Set (102 adults, one neutral and one smiling studio
photo each, a 189-point template on the neutral one) into CK+-layout sequences of real faces:
neutral first, the expression rising to its peak at the last frame, label named after the last
frame. The set is read from where it lies (never copied into the repository; training.synthesis.london):

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
  action units, `facs.PHOTOREAL_AU`, in units of the inter-pupil distance, at a per-sequence peak intensity in
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

Where it is
-----------
This module draws each sequence's expression from the FACS tables (training.synthesis.facs), makes
the camera (framing, head motion, light, blur, noise, compression) and renders sequences and
performances. The person (photo, triangulation, aligned smile, morphs): training.synthesis.identity;
the template: training.synthesis.template; the warp: training.synthesis.warp; creases and the mouth
interior: training.synthesis.texture; speech's mouth shapes: training.synthesis.speech; the CK+ tree
and the talking videos on disk: training.synthesis.photoreal_dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from training.synthesis.facs import (
    KINDS,
    PHOTOREAL_AU,
    PHOTOREAL_EMOTIONS,
    PHOTOREAL_FOLLOW,
    PHOTOREAL_JAW,
    PhotorealExpression,
    photoreal_au_disp,
)
from training.synthesis.identity import Identity, load_identity, smile_data, smile_points
from training.synthesis.london import id_key
from training.synthesis.motion import ease
from training.synthesis.speech import photoreal_speech_disp
from training.synthesis.template import LIDS, N_POINTS
from training.synthesis.texture import mouth_interior, texture
from training.synthesis.warp import pwa_warp, untangle

# --------------------------------------------------------------------------------------------
# Expressions: a sequence's peak drawn from the FACS tables, and blinks
# --------------------------------------------------------------------------------------------


def _expression(ident: Identity, emotion: str, gains: dict, rng) -> PhotorealExpression:
    proto = PHOTOREAL_EMOTIONS[emotion]
    peak = float(rng.uniform(0.6, 1.0))
    side = int(rng.choice([-1, 1]))
    disp = np.zeros((N_POINTS, 2))
    for au, wgt in proto["aus"].items():
        g = wgt * gains.get(au, 1.0) * peak
        if au in PHOTOREAL_JAW:
            disp += g * PHOTOREAL_JAW[au] * photoreal_au_disp(ident, PHOTOREAL_AU["jaw"])
        else:
            disp += g * photoreal_au_disp(ident, PHOTOREAL_AU[au])
    for au, wgt in proto.get("side", {}).items():
        disp += wgt * gains.get(au, 1.0) * peak * photoreal_au_disp(ident, PHOTOREAL_AU[au], sides=(side,))
    for follower, leader, f in PHOTOREAL_FOLLOW:  # glabella skin goes where the inner brow ends go
        disp[follower] += f * (disp[leader] - disp[follower])
    tex = {k: v * peak * float(rng.uniform(0.8, 1.15)) for k, v in proto["tex"].items()}
    return PhotorealExpression(
        disp, tex, side, proto.get("teeth", 0.0) * float(rng.uniform(0.7, 1.1)), proto.get("lower_teeth", 0.0)
    )


def _blink(pts: np.ndarray, closed: float, ey) -> np.ndarray:
    if closed <= 0:
        return pts
    p = pts.copy()
    for up, lo in LIDS:
        gap = pts[lo] - pts[up]
        p[up] = pts[up] + 0.9 * closed * gap
        p[lo] = pts[lo] - 0.05 * closed * gap
    for crease, (up, lo) in zip((35, 36, 37, 40, 41, 42), LIDS):
        p[crease] = pts[crease] + 0.45 * closed * (pts[lo] - pts[up])
    return p


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


def _make_scene(ident: Identity, size, n: int, color: bool, rng, head=None) -> _Scene:
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
    cy = (
        float(rng.uniform(max(0.02 * h + half, 0.42 * h), min(0.98 * h - half, 0.58 * h)))
        if half < 0.46 * h
        else 0.5 * h
    )
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
        shifts = [
            drift * t[i] + wob * np.sin(2 * np.pi * wob_f * t[i] + wob_ph) + rng.normal(0, 0.15, 2) for i in range(n)
        ]
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
        m = cv2.getRotationMatrix2D(
            (float(centre[0] * work), float(centre[1] * work)),
            float(np.degrees(np.radians(rolls[i]))),
            float(scale * sizes[i] / work),
        )
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
    _ok, buf = cv2.imencode(".jpg", u8, [cv2.IMWRITE_JPEG_QUALITY, scene.quality])
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)


def _in_studio(ident: Identity, studio, smile: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """The neutral photo (and the aligned smile) moved into `studio` (training.synthesis.studio): the
    London wall replaced, the person relit, the camera's colour response. None: as photographed."""
    if studio is None:
        return ident.neutral, smile
    from training.synthesis import studio as studios

    neutral = studios.apply(ident.neutral, ident.pts, studio)
    if smile is not None:
        smile = studios.apply(smile, smile_points(ident, 1.0), studio)
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
    r = np.random.default_rng([seed, id_key(face_id), 10**6])
    return {au: float(r.uniform(0.85, 1.2)) for au in sorted(set(PHOTOREAL_AU) | set(PHOTOREAL_JAW))}


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
    faint smile (see `smile.faint_smile_peak`).

    Draws from `rng` in a fixed order: the onset (1-4 neutral frames), then the camera (framing,
    head motion, light, blur, noise, JPEG quality), then the expression. So one rng state gives
    the same camera for every emotion, and the frames before the onset ends are identical."""
    if emotion not in PHOTOREAL_EMOTIONS:
        raise ValueError(f"unknown emotion {emotion!r}; expected one of {KINDS}")
    n_frames = int(n_frames)
    if n_frames < 2:
        raise ValueError("a sequence needs at least 2 frames (neutral first, peak last)")
    face_id = str(face_id)
    ident = load_identity(str(Path(london_dir).resolve()), face_id)
    size = (int(size[0]), int(size[1]))
    onset = int(rng.integers(1, min(4, n_frames - 1) + 1))
    curve = ease(n_frames, onset)
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
        aligned, flow = smile_data(ident)
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
                a = cv2.remap(
                    neutral,
                    gx - t * flow[..., 0],
                    gy - t * flow[..., 1],
                    cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_REPLICATE,
                )
                b = cv2.remap(
                    smile,
                    gx + (1 - t) * flow[..., 0],
                    gy + (1 - t) * flow[..., 1],
                    cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_REPLICATE,
                )
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
        expr = PhotorealExpression(np.zeros((N_POINTS, 2)), {}, 1, 0.0, 0.0)
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
            p = untangle(p, p0, ident.ey)
        img = pwa_warp(base, p0, p, ident.tris) if (c > 0 or closed[i] > 0) else base
        if c > 0:
            img = texture(img, p, frame_of, expr.tex, c, expr.side)
            img = mouth_interior(img, p, p0, iod, ident.ey, expr, c)
        frames.append(_film(scene, img, i, studio))
    return frames


# --------------------------------------------------------------------------------------------
# Performances: a face that talks, turns, blinks and shows an expression as it comes and goes
# (the tracks come from training.synthesis.motion, shared with the drawn renderer)
# --------------------------------------------------------------------------------------------


def _depth(ident: Identity) -> np.ndarray:
    """(189,) how far each template point stands out towards the camera, in inter-pupil distances:
    a smooth dome over the face (1 iod at its centre, falling off with no edge, so the warp does not
    fold where the cheek meets the ears and hair) with the nose standing out from it. Enough for the
    parallax of a head turned by up to ~20 degrees."""
    centre = ident.eye + 0.55 * ident.iod * ident.ey
    rel = ident.pts - centre
    u, v = rel @ ident.ex / ident.iod, rel @ ident.ey / ident.iod
    z = np.exp(-((u / 1.3) ** 2) - (v / np.where(v < 0, 2.0, 1.6)) ** 2)
    tip = ident.pts[[53, 59, 55]].mean(0)
    return z + 0.45 * np.exp(-((np.linalg.norm(ident.pts - tip, axis=1) / (0.3 * ident.iod)) ** 2))


def _turn(
    p: np.ndarray, centre: np.ndarray, iod: float, ex, ey, depth: np.ndarray, yaw: float, pitch: float
) -> np.ndarray:
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


def render_performance(
    london_dir, face_id, emotion: str, perf, rng, size=(640, 360), color: bool = False, studio=None
) -> list[np.ndarray]:
    """Frames of a London face performing `perf` (a motion.Performance): `emotion` (one of CLASSES, or
    "neutral") shown at perf.intensity, speech moving the jaw and lips over it, the head turning,
    nodding and drifting, blinks. Happy is the person's real smile (the morph, at the intensity), the
    other six the FACS warps. Returns uint8 frames, gray (H, W) or BGR (H, W, 3); size is (W, H)."""
    if emotion not in PHOTOREAL_EMOTIONS:
        raise ValueError(f"unknown emotion {emotion!r}; expected one of {KINDS}")
    face_id = str(face_id)
    ident = load_identity(str(Path(london_dir).resolve()), face_id)
    n = len(perf)
    scene = _make_scene(ident, (int(size[0]), int(size[1])), n, color, rng, head=(perf.roll, perf.shift, perf.scale))
    k = scene.work

    def prep(im):
        if k != 1.0:
            im = cv2.resize(im, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
        return im if color else cv2.cvtColor(im, cv2.COLOR_BGR2GRAY)

    if emotion in ("neutral", "happy"):
        expr = PhotorealExpression(np.zeros((N_POINTS, 2)), {}, 1, 0.0, 0.0)
    else:
        expr = _expression(ident, emotion, _gains(face_id), rng)
    speech = PhotorealExpression(
        expr.disp,
        expr.tex,
        expr.side,
        max(expr.teeth, float(rng.uniform(0.5, 0.9))),
        max(expr.lower_teeth, float(rng.uniform(0.0, 0.5))),
    )
    ring = np.zeros((len(ident.ring), 2))
    depth = _depth(ident)
    iod, ey, ex = ident.iod * k, ident.ey, ident.ex
    centre = (ident.eye + 0.55 * ident.iod * ident.ey) * k
    frame_of = (iod, ident.eye * k, ex, ey)
    aligned, flow = smile_data(ident) if emotion == "happy" else (None, None)
    neutral, aligned = _in_studio(ident, studio, aligned)
    neutral = prep(neutral)
    if emotion == "happy":
        smile = prep(aligned)
        if k != 1.0:
            flow = cv2.resize(flow, neutral.shape[1::-1], interpolation=cv2.INTER_AREA) * k
        gx, gy = np.meshgrid(
            np.arange(neutral.shape[1], dtype=np.float32), np.arange(neutral.shape[0], dtype=np.float32)
        )
    frames = []
    for i in range(n):
        c = float(perf.intensity[i])
        if emotion == "happy" and c > 0.01:
            a = cv2.remap(
                neutral, gx - c * flow[..., 0], gy - c * flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
            )
            b = cv2.remap(
                smile,
                gx + (1 - c) * flow[..., 0],
                gy + (1 - c) * flow[..., 1],
                cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REPLICATE,
            )
            base = cv2.addWeighted(a, 1 - c, b, c, 0)
            src = np.vstack([smile_points(ident, c), ident.ring]) * k
        else:
            base, src = neutral, np.vstack([ident.pts, ident.ring]) * k
            c = c if emotion != "happy" else 0.0
        move = photoreal_speech_disp(ident, perf.jaw[i], perf.spread[i], perf.press[i])
        if emotion not in ("neutral", "happy"):
            move = move + c * expr.disp
        p = src + np.vstack([move, ring]) * k
        if perf.blink[i] > 0.02:
            p[:N_POINTS] = _blink(p[:N_POINTS], float(perf.blink[i]), ey)
        p = untangle(p, src, ey)
        p = _turn(p, centre, iod, ex, ey, depth, float(perf.yaw[i]), float(perf.pitch[i]))
        img = pwa_warp(base, src, p, ident.tris)
        if c > 0.01 and expr.tex:
            img = texture(img, p, frame_of, expr.tex, c, expr.side)
        img = mouth_interior(
            img,
            p,
            _turn(src, centre, iod, ex, ey, depth, float(perf.yaw[i]), float(perf.pitch[i])),
            iod,
            ey,
            speech,
            1.0,
        )
        frames.append(_film(scene, img, i, studio))
    return frames
