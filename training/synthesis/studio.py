"""The studio a face is filmed in: what stands behind it, the light on it, the camera's response.

A model trained on faces that all stand before one wall, lit one way, learns the wall and the light
as part of the expression. This module changes the studio of a real photo while keeping the
person, so that

* training data can be rendered with a studio drawn at random per clip (`draw`, used by
  `training synth --photoreal --studio`): the backdrop, the light and the camera carry no label;
* the served model can be measured on the same held-out faces in many studios
  (benchmarks/studio_shift.py): does its answer stay when only the room changes?

A studio has three parts, each a frozen dataclass so a benchmark condition is a plain value:

* `Backdrop` - what stands behind the person: flat colours, gradients, smooth noise, textures
  (scikit-image's public-domain images) and photographs from a folder of the user's. The person
  is cut out of the photo by `person_mask`: the London and Canada sets' walls are near-uniform, so
  the background is what is near the wall's colour and connected to the top and side borders; the
  face inside the template's outline is always kept.
* `Light` - a directional key light with the shading and cast shadows a face's shape gives it. The
  shape is a height field built from the 189-point template (a dome over the face outline, rounder
  across than along, the
  nose's ridge and tip, the eye sockets); hard light keeps the shadow edges, soft light blurs them
  and lifts the shadows.
* `Camera` - the response of another camera: white balance and colour casts, another colour-to-grey
  mix (the network sees gray), gamma and contrast curves, vignetting, sensor noise; and the
  bit rate a video is encoded at (`training.video.write_video(bit_rate=...)`).

`apply` changes a photo's backdrop, light and colour (the parts that live on the person and the
room, applied before any warp or framing); `camera_frame` applies the camera's tone curve,
vignette and noise to a finished frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

BACKGROUNDS_ENV = "RAMFER_BACKGROUNDS_DIR"  # a folder of photographs to put behind faces (optional)
TEXTURES = ("brick", "grass", "gravel")  # scikit-image's own images (public domain / CC0)
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")

# Template points (training.synthesis.template.TEMPLATE_PARTS): the outline of the face and ears,
# the nose, the eyes. The photos' templates (London and Canada sets) share this order.
_FACE_OUTLINE = tuple(range(109, 145)) + (185, 186, 187, 188)  # ears, jaw, hairline
_NOSE_RIDGE = (50, 51, 52, 53, 54, 56, 57, 58, 59, 60)
_NOSE_TIP = 55
_MOUTH = tuple(range(87, 109))


@dataclass(frozen=True)
class Backdrop:
    """What stands behind the person. kind: "wall" (the photo's own), "flat" (colour), "gradient"
    (colour -> colour2 along angle degrees), "noise" (smooth random blobs around colour, seeded),
    "texture" (a scikit-image texture tinted by colour), "photo" (a file, cropped at random by seed)."""

    kind: str = "wall"
    colour: tuple[int, int, int] = (128, 128, 128)  # BGR
    colour2: tuple[int, int, int] = (40, 40, 40)
    angle: float = 90.0
    name: str = ""  # texture name or photo path
    seed: int = 0


@dataclass(frozen=True)
class Light:
    """A directional key light. azimuth: degrees in the image plane where the light comes from
    (0 from image right, 90 from above, 180 from image left); elevation: degrees above the face's
    plane (90 frontal, 20 grazing); strength: how dark the turned-away side gets (0: unlit, 1: black
    but for the ambient); hardness 1: sharp shadows, 0: soft (blurred, lifted)."""

    azimuth: float = 90.0
    elevation: float = 90.0
    strength: float = 0.0
    hardness: float = 1.0


@dataclass(frozen=True)
class Camera:
    """Another camera's response. gains: per-channel white balance (B, G, R); grey: the weights of
    its colour-to-grey mix (None: the usual luma); gamma; contrast: > 0 an S-curve, < 0 flatter;
    vignette: the corners' darkening (0..1); noise: sensor noise sigma (0..255 units);
    bit_rate: H.264 bits per second for the video (None: the writer's default quality)."""

    gains: tuple[float, float, float] = (1.0, 1.0, 1.0)
    grey: tuple[float, float, float] | None = None
    gamma: float = 1.0
    contrast: float = 0.0
    vignette: float = 0.0
    noise: float = 0.0
    bit_rate: int | None = None
    seed: int = 0


@dataclass(frozen=True)
class Studio:
    backdrop: Backdrop = field(default_factory=Backdrop)
    light: Light = field(default_factory=Light)
    camera: Camera = field(default_factory=Camera)


STUDIO_AS_PHOTOGRAPHED = Studio()


# --------------------------------------------------------------------------------------------
# The person, cut out of the photo
# --------------------------------------------------------------------------------------------


def face_outline(points: np.ndarray) -> np.ndarray:
    """(K, 2) int32 convex hull of the template's face, ears and hairline."""
    return cv2.convexHull(np.round(points[list(_FACE_OUTLINE)]).astype(np.int32)).reshape(-1, 2)


def person_mask(
    image: np.ndarray,
    points: np.ndarray,
    step_tolerance: float = 2.5,
    tolerance: float = 70.0,
    hue_tolerance: float = 9.0,
) -> np.ndarray:
    """(H, W) float32 alpha, 1 on the person and 0 on the studio wall, feathered over ~2 px.

    A studio wall is smooth but not flat (light falls off across it), so the wall is grown from the
    top border and the upper three quarters of the sides by a flood fill that steps from pixel to neighbouring pixel while their
    colours differ by at most `step_tolerance` (per channel, after a light blur) and stay within
    `tolerance` of the brightness and `hue_tolerance` of the hue (Lab a, b) of the top corners; the bottom border is the person's clothes. The
    face inside the template's outline is always the person, and holes inside the person are filled."""
    h, w = image.shape[:2]
    bgr = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    smooth = cv2.GaussianBlur(bgr, (0, 0), 1.5)
    c = max(8, min(h, w) // 16)
    wall = np.median(np.concatenate([smooth[:c, :c].reshape(-1, 3), smooth[:c, -c:].reshape(-1, 3)]), axis=0)
    # near the wall: any brightness within `tolerance`, but the wall's (grey) hue: skin, hair and
    # coloured clothes differ from it in hue even where a neck is lit as bright as the wall
    lab = cv2.cvtColor(smooth, cv2.COLOR_BGR2LAB).astype(np.float32)
    wall_lab = cv2.cvtColor(wall.reshape(1, 1, 3).astype(np.uint8), cv2.COLOR_BGR2LAB).astype(np.float32)[0, 0]
    near = (np.abs(lab[..., 0] - wall_lab[0]) < tolerance) & (
        np.hypot(*(lab[..., 1:] - wall_lab[1:]).transpose(2, 0, 1)) < hue_tolerance
    )
    grown = np.zeros((h + 2, w + 2), np.uint8)
    grown[1:-1, 1:-1][~near] = 1  # flood fill does not cross a mask's set pixels
    face = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(face, face_outline(points), 1)
    grown[1:-1, 1:-1][face > 0] = 1
    diff = (step_tolerance,) * 3
    flags = 4 | cv2.FLOODFILL_MASK_ONLY | (2 << 8)
    border = (
        [(x, 0) for x in range(0, w, 8)]
        + [(0, y) for y in range(0, 3 * h // 4, 8)]
        + [(w - 1, y) for y in range(0, 3 * h // 4, 8)]
    )
    for x, y in border:
        if grown[y + 1, x + 1] == 0:
            cv2.floodFill(smooth, grown, (x, y), 0, diff, diff, flags)
    background = grown[1:-1, 1:-1] == 2
    person = (~background).astype(np.uint8)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    person = cv2.morphologyEx(person, cv2.MORPH_OPEN, k)
    # the person is the component holding the face; holes in it (earrings, eye glints) are filled
    _, comp = cv2.connectedComponents(person, connectivity=8)
    nose = np.round(points[_NOSE_TIP]).astype(int)
    filled = (comp == comp[np.clip(nose[1], 0, h - 1), np.clip(nose[0], 0, w - 1)]).astype(np.uint8)
    _, comp = cv2.connectedComponents(1 - filled, connectivity=4)
    edge = np.unique(np.concatenate([comp[0], comp[-1], comp[:, 0], comp[:, -1]]))
    filled[(comp > 0) & ~np.isin(comp, edge)] = 1  # background that touches no border: a hole
    return cv2.GaussianBlur(filled.astype(np.float32), (0, 0), 1.2)


# --------------------------------------------------------------------------------------------
# Backdrops
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _texture(name: str) -> np.ndarray:
    from skimage import data

    return np.asarray(getattr(data, name)(), np.uint8)


@lru_cache(maxsize=32)
def _photo(path: str) -> np.ndarray:
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f"cannot read background photo {path}")
    return img


def background_photos(folder=None) -> list[str]:
    """The photographs in `folder` (or $RAMFER_BACKGROUNDS_DIR), sorted; [] when neither is given."""
    import os

    folder = folder or os.environ.get(BACKGROUNDS_ENV)
    if not folder:
        return []
    return sorted(str(p) for p in Path(folder).iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)


def _cover(img: np.ndarray, h: int, w: int, rng) -> np.ndarray:
    """`img` scaled to cover (h, w) (at 1-1.6x the least), a random window of it."""
    ih, iw = img.shape[:2]
    s = max(h / ih, w / iw) * float(rng.uniform(1.0, 1.6))
    big = cv2.resize(
        img,
        (max(w, int(np.ceil(iw * s))), max(h, int(np.ceil(ih * s)))),
        interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR,
    )
    y = int(rng.integers(0, big.shape[0] - h + 1))
    x = int(rng.integers(0, big.shape[1] - w + 1))
    return big[y : y + h, x : x + w]


def backdrop_image(backdrop: Backdrop, h: int, w: int) -> np.ndarray:
    """(h, w, 3) uint8 BGR image of the backdrop (not for kind "wall", the photo's own: callers keep the photo)."""
    rng = np.random.default_rng([backdrop.seed, 7])
    c1 = np.array(backdrop.colour, np.float32)
    if backdrop.kind == "flat":
        return np.broadcast_to(c1.astype(np.uint8), (h, w, 3)).copy()
    if backdrop.kind == "gradient":
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        a = np.radians(backdrop.angle)
        t = (xx / w - 0.5) * np.cos(a) - (yy / h - 0.5) * np.sin(a)
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
        return (c1 * (1 - t[..., None]) + np.array(backdrop.colour2, np.float32) * t[..., None]).astype(np.uint8)
    if backdrop.kind == "noise":
        small = rng.normal(0, 1, (max(2, h // 24), max(2, w // 24), 3)).astype(np.float32)
        blobs = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        fine = cv2.GaussianBlur(rng.normal(0, 1, (h, w, 3)).astype(np.float32), (0, 0), 2.0)
        return np.clip(c1 + 45 * blobs + 12 * fine, 0, 255).astype(np.uint8)
    if backdrop.kind == "texture":
        tex = _cover(_texture(backdrop.name), h, w, rng).astype(np.float32) / 255.0
        tint = c1 / max(float(c1.mean()), 1.0)
        return np.clip(tex[..., None] * 255 * tint * 0.9, 0, 255).astype(np.uint8)
    if backdrop.kind == "photo":
        return _cover(_photo(backdrop.name), h, w, rng)
    raise ValueError(f"unknown backdrop kind {backdrop.kind!r}")


# --------------------------------------------------------------------------------------------
# Light: shading and cast shadows from the face's shape
# --------------------------------------------------------------------------------------------


def height_field(points: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """(H, W) float32 heights in pixels toward the camera: a dome over the face outline (about half
    the face's width high at the nose), a softer one over the rest of the person, the nose's ridge
    and tip raised, the eye sockets lowered. A face's shape as far as light and shadow need it."""
    h, w = alpha.shape
    pupils = points[[0, 1]]
    iod = float(np.linalg.norm(pupils[1] - pupils[0]))
    # a face is rounder across than along: the dome is built on the outline squeezed 2.5x vertically
    squeeze = 2.5
    face = np.zeros((max(2, int(h / squeeze)), w), np.uint8)
    cv2.fillConvexPoly(face, np.round(face_outline(points) / [1, squeeze]).astype(np.int32), 1)
    d = cv2.resize(cv2.distanceTransform(face, cv2.DIST_L2, 5), (w, h), interpolation=cv2.INTER_LINEAR)
    r = max(float(d.max()), 1.0)
    dome = np.sqrt(np.clip(1 - (1 - d / r) ** 2, 0, 1)) * 0.8 * iod
    body = cv2.distanceTransform((alpha > 0.5).astype(np.uint8), cv2.DIST_L2, 5)
    body = np.sqrt(np.clip(body / max(float(body.max()), 1.0), 0, 1)) * 0.6 * iod
    height = np.maximum(dome, body)
    bumps = np.zeros((h, w), np.float32)
    ridge = np.round(points[list(_NOSE_RIDGE) + [_NOSE_TIP]]).astype(np.int32)
    for a, b in ((ridge[:5], ridge[-1]), (ridge[5:10], ridge[-1])):
        cv2.polylines(bumps, [np.vstack([a, b]).reshape(-1, 1, 2)], False, 1.0, max(1, int(0.12 * iod)))
    tip = np.round(points[_NOSE_TIP] - 0.12 * iod * _up(points)).astype(int)
    cv2.circle(bumps, (int(tip[0]), int(tip[1])), max(1, int(0.16 * iod)), 1.0, -1)
    bumps = cv2.GaussianBlur(bumps, (0, 0), 0.08 * iod) * 0.45 * iod
    sockets = np.zeros((h, w), np.float32)
    for p in pupils:
        cv2.circle(sockets, (int(p[0]), int(p[1])), max(1, int(0.22 * iod)), 1.0, -1)
    sockets = cv2.GaussianBlur(sockets, (0, 0), 0.12 * iod) * 0.18 * iod
    return (height + bumps - sockets).astype(np.float32)


def _up(points: np.ndarray) -> np.ndarray:
    """Unit vector from the mouth towards the eyes (image coordinates)."""
    v = points[[0, 1]].mean(0) - points[list(_MOUTH)].mean(0)
    return v / max(float(np.linalg.norm(v)), 1e-6)


def shading(points: np.ndarray, alpha: np.ndarray, light: Light) -> np.ndarray:
    """(H, W) float32 gain on the person under `light`, 1 where a surface facing the camera would be
    as bright as it was photographed (flat frontal light), with the shadows the height field casts."""
    h, w = alpha.shape
    iod = float(np.linalg.norm(points[1] - points[0]))
    az, el = np.radians(light.azimuth), np.radians(np.clip(light.elevation, 5, 90))
    L = np.array([np.cos(el) * np.cos(az), -np.cos(el) * np.sin(az), np.sin(el)], np.float32)  # x right, y down, z out
    # work at ~ 12 px per inter-pupil distance: enough for the nose's shadow, fast
    f = min(1.0, 12.0 / max(iod, 1.0) * 2)
    small = cv2.resize(alpha, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    H = height_field(points * f, small)
    H = cv2.GaussianBlur(H, (0, 0), 0.06 * iod * f + 0.5)
    gy, gx = np.gradient(H)
    n = np.stack([-gx, -gy, np.ones_like(H)], -1)
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    lambert = np.clip(n @ L, 0, 1)
    if light.hardness > 0 and el < np.radians(85):  # cast shadows: march toward the light over the height field
        step = np.array([L[0], L[1]]) / max(np.hypot(L[0], L[1]), 1e-6)
        rise = np.tan(el)  # height the ray climbs per pixel travelled
        yy, xx = np.mgrid[0 : H.shape[0], 0 : H.shape[1]].astype(np.float32)
        lit = np.ones_like(H)
        for k in range(1, int(0.9 * iod * f) + 1):
            ahead = cv2.remap(H, xx + k * step[0], yy + k * step[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            lit = np.minimum(lit, np.clip(1 - (ahead - H - k * rise) / (0.04 * iod * f + 0.5), 0, 1))
        lambert *= lit * light.hardness + (1 - light.hardness)
    if light.hardness < 1:  # a soft light: its shadows blur out
        lambert = cv2.GaussianBlur(lambert, (0, 0), (1 - light.hardness) * 0.35 * iod * f + 0.1)
    ambient = 1.0 - light.strength
    gain = (
        (ambient + (1 - ambient) * lambert) / (ambient + (1 - ambient) * L[2] + 1e-6)
        if light.strength > 0
        else np.ones_like(H)
    )
    gain = np.clip(gain, 0.08, 1.8).astype(np.float32)
    return cv2.resize(gain, (w, h), interpolation=cv2.INTER_LINEAR)


# --------------------------------------------------------------------------------------------
# Putting it together
# --------------------------------------------------------------------------------------------


def apply(image: np.ndarray, points: np.ndarray, studio: Studio, alpha: np.ndarray | None = None) -> np.ndarray:
    """The photo `image` (BGR uint8, the person before a near-uniform wall, `points` its 189-point
    template) in `studio`: the backdrop behind the person, the person relit, the camera's colour
    response (white balance, grey mix). Returns BGR uint8 of the same size. `alpha`: the person's
    mask when already known (person_mask)."""
    if studio == STUDIO_AS_PHOTOGRAPHED:
        return image
    h, w = image.shape[:2]
    out = image.astype(np.float32)
    needs_mask = studio.backdrop.kind != "wall" or studio.light.strength > 0
    if needs_mask and alpha is None:
        alpha = person_mask(image, points)
    if studio.light.strength > 0:
        gain = 1 + (shading(points, alpha, studio.light) - 1) * alpha
        out *= gain[..., None]
    if studio.backdrop.kind != "wall":
        back = backdrop_image(studio.backdrop, h, w).astype(np.float32)
        out = out * alpha[..., None] + back * (1 - alpha[..., None])
    cam = studio.camera
    if cam.gains != (1.0, 1.0, 1.0):
        out *= np.array(cam.gains, np.float32)
    if cam.grey is not None:
        g = np.array(cam.grey, np.float32)
        out = np.repeat((out @ (g / g.sum()))[..., None], 3, axis=2)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def camera_frame(frame: np.ndarray, camera: Camera, index: int = 0) -> np.ndarray:
    """A finished frame (gray or BGR uint8) through the camera's tone curve (gamma, contrast),
    vignette and sensor noise (seeded by camera.seed and the frame's index)."""
    if camera.gamma == 1.0 and camera.contrast == 0.0 and camera.vignette == 0.0 and camera.noise == 0.0:
        return frame
    x = frame.astype(np.float32) / 255.0
    if camera.gamma != 1.0:
        x = x**camera.gamma
    if camera.contrast != 0.0:  # a logistic S-curve through (0.5, 0.5), normalised to keep 0 and 1
        k = 1 + 6 * abs(camera.contrast)
        s = lambda v: 1 / (1 + np.exp(-k * (v - 0.5)))  # noqa: E731
        curve = (s(x) - s(0.0)) / (s(1.0) - s(0.0))
        x = curve if camera.contrast > 0 else 0.5 + (x - 0.5) * (1 - 0.6 * abs(camera.contrast))
    if camera.vignette:
        h, w = x.shape[:2]
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
        v = 1 - camera.vignette * np.clip(r2 / 2, 0, 1)
        x = x * (v[..., None] if x.ndim == 3 else v)
    x = x * 255
    if camera.noise:
        x += np.random.default_rng([camera.seed, index]).normal(0, camera.noise, x.shape).astype(np.float32)
    return np.clip(x + 0.5, 0, 255).astype(np.uint8)


STUDIO_STREAM = 77  # a sequence's studio has a random stream of its own: [*the sequence's key, STUDIO_STREAM]


def draw_for(key: list[int], photos: list[str] | tuple = ()) -> Studio:
    """The studio of the sequence whose random stream is `key` (e.g. [seed, person, k]), drawn from a
    stream of its own, so the sequence's other draws are what they are without a studio."""
    return draw(np.random.default_rng([*key, STUDIO_STREAM]), photos)


def draw(rng, photos: list[str] | tuple = ()) -> Studio:
    """A random studio for one training clip: any backdrop (the photo's own wall 15 % of the time),
    a key light from any side or above at any hardness (none 20 % of the time), and a camera
    response. Draws from `rng` in a fixed order."""
    kinds = ["wall", "flat", "gradient", "noise", "texture"] + (["photo"] if photos else [])
    p = np.array([0.15, 0.25, 0.2, 0.15, 0.1] + ([0.15] if photos else []))
    kind = str(rng.choice(kinds, p=p / p.sum()))
    colour = tuple(int(v) for v in rng.integers(0, 256, 3))
    colour2 = tuple(int(v) for v in rng.integers(0, 256, 3))
    name = ""
    if kind == "texture":
        name = str(rng.choice(TEXTURES))
    elif kind == "photo":
        name = str(photos[int(rng.integers(len(photos)))])
    backdrop = Backdrop(kind, colour, colour2, float(rng.uniform(0, 360)), name, int(rng.integers(2**31)))
    lit = rng.random() >= 0.2
    light = Light(
        azimuth=float(rng.uniform(-30, 210)),
        elevation=float(rng.uniform(25, 75)),
        strength=float(rng.uniform(0.2, 0.75)) if lit else 0.0,
        hardness=float(rng.uniform(0, 1)),
    )
    cast = rng.random() < 0.6
    gains = tuple(float(v) for v in np.exp(rng.normal(0, 0.12, 3))) if cast else (1.0, 1.0, 1.0)
    grey = tuple(float(v) for v in rng.dirichlet([2, 2, 2])) if rng.random() < 0.4 else None
    camera = Camera(
        gains=gains,
        grey=grey,
        gamma=float(np.exp(rng.uniform(np.log(0.6), np.log(1.6)))),
        contrast=float(rng.uniform(-0.6, 0.6)),
        vignette=float(rng.uniform(0, 0.5)) if rng.random() < 0.4 else 0.0,
        noise=float(rng.uniform(0, 6)),
        seed=int(rng.integers(2**31)),
    )
    return Studio(backdrop, light, camera)
