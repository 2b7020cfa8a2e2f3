"""The piecewise-affine warp that moves a London photo's template points: a Delaunay triangulation of
the template plus fixed points on the image border (`border_ring`, `triangulate`), each triangle's
pixels sampled through its own affine map (`pwa_warp`: one dense map per frame, one cv2.remap), and
the rule that keeps lids and lips from crossing when points are pushed far (`untangle`).

The photo-real renderer warps every expression, blink, speech frame and head turn with it, and
morphs (training.synthesis.identity) warp two people onto one shape with it.
"""

from __future__ import annotations

import itertools

import cv2
import numpy as np

from training.synthesis.template import CHAINS, LIDS, N_POINTS, NOT_WARPED


def border_ring(w: int, h: int, step: float = 90.0) -> np.ndarray:
    pts = []
    nx, ny = max(2, int(round(w / step))), max(2, int(round(h / step)))
    for x in np.linspace(0, w - 1, nx + 1):
        pts += [(x, 0), (x, h - 1)]
    for y in np.linspace(0, h - 1, ny + 1)[1:-1]:
        pts += [(0, y), (w - 1, y)]
    return np.array(pts, np.float64)


def triangulate(pts: np.ndarray, ring: np.ndarray, iod: float, ey) -> tuple[np.ndarray, np.ndarray]:
    """Delaunay triangles (indices into pts ++ ring) of the warped points, and the points they
    were built on: the template with the lips (and lids) a little apart, so the triangles between
    the lips can open into a mouth."""
    canon = pts.copy()
    canon[[94, 95, 96, 97, 98]] -= 0.02 * iod * ey
    canon[[99, 100, 101, 102, 103]] += 0.04 * iod * ey
    canon[[104, 105, 106, 107, 108]] += 0.02 * iod * ey
    for up, lo in LIDS:  # keep the lids apart too
        gap = canon[lo] - canon[up]
        if gap @ ey < 0.02 * iod:
            canon[lo] = canon[up] + 0.02 * iod * ey
    use = [i for i in range(N_POINTS) if i not in NOT_WARPED]
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


def untangle(p: np.ndarray, p0: np.ndarray, ey) -> np.ndarray:
    """Keep each chain's top-to-bottom order: a point may come at most to 25 % of its neutral
    distance below the one above it (never cross it), else it is pushed down."""
    p = p.copy()
    for chain in CHAINS:
        for a, b in itertools.pairwise(chain):
            gap0 = max(0.0, float((p0[b] - p0[a]) @ ey))
            gap = float((p[b] - p[a]) @ ey)
            if gap < 0.25 * gap0:
                p[b] += (0.25 * gap0 - gap) * ey
    return p


def pwa_warp(img: np.ndarray, src: np.ndarray, dst: np.ndarray, tris: np.ndarray) -> np.ndarray:
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
    area = 0.5 * (
        (d[:, 1, 0] - d[:, 0, 0]) * (d[:, 2, 1] - d[:, 0, 1]) - (d[:, 2, 0] - d[:, 0, 0]) * (d[:, 1, 1] - d[:, 0, 1])
    )
    keep = np.abs(area) > 0.05
    d, s = d[keep], s[keep]
    n = len(d)
    a = np.concatenate([d, np.ones((n, 3, 1))], axis=2)  # (T, 3, 3): [x y 1] rows
    coef = np.linalg.solve(a, s)  # (T, 3, 2): src = [x y 1] @ coef
    coef = np.concatenate(
        [coef, np.array([[[1, 0], [0, 1], [0, 0]]], np.float64)], axis=0
    )  # identity for uncovered pixels
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
    out[y0:y1, x0:x1] = cv2.remap(img, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).reshape(
        out[y0:y1, x0:x1].shape
    )
    return out
