"""Looking where the face was: BlazeFace on a 128 px region around the last face found
(FaceDetector.detect_video, what training and the service do) against the whole frame at 192 px
(FaceDetector.detect_whole on every frame), on the same videos, interleaved video by video.

Per video: frames where each finds a face, how far the region's landmarks lie from the whole
frame's (eyes, nose, mouth; in inter-eye distances), and milliseconds per frame of each.

    python benchmarks/detector_regions.py [--data DIR ...] [--videos 12] [--london DIR]
    python benchmarks/detector_regions.py --margins 2 2.5 3 3.5 4 --truth-people 25   # how REGION_MARGIN was chosen

The videos: a London person's photos panned and zoomed (benchmarks/face_video.py, 10 s) and the
tests' astronaut video, plus up to --videos of each --data folder's MP4s (e.g. the talking
videos of `python -m training synth --photoreal LONDON --talking`: heads that turn, nod and talk).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from training.faces import FaceDetector, to_gray  # noqa: E402
from training.video import read_frames  # noqa: E402


def videos(args) -> list[tuple[str, list[np.ndarray]]]:
    from videos import astronaut_frames

    out = [("astronaut (tests/videos.py)", [to_gray(f) for f in astronaut_frames(60)])]
    london = args.london or os.environ.get("RAMFER_LONDON_DIR")
    if london:
        from benchmarks.face_video import face_frames

        out.append(
            (
                "London 013 panned (face_video.py, 10 s)",
                [to_gray(f) for f in face_frames(Path(london), "013", seconds=10)],
            )
        )
    for d in args.data:
        files = sorted(Path(d).rglob("*.mp4"))
        step = max(1, len(files) // args.videos)
        for f in files[::step][: args.videos]:
            out.append((str(f.relative_to(d)), [fr.gray for fr in read_frames(f)]))
    return out


def jitter(rows: np.ndarray) -> list[float]:
    """Frame-to-frame shake of the eyes, nose and mouth: each point's distance from the midpoint
    of its neighbours in the frames before and after, the largest of the four, in inter-eye
    distances (a face that moves smoothly has little; detector noise adds to it)."""
    p = rows[:, 3:11].reshape(-1, 4, 2)
    ok = ~np.isnan(p[:, 0, 0])
    out = []
    for t in range(1, len(p) - 1):
        if ok[t - 1] and ok[t] and ok[t + 1]:
            iod = np.linalg.norm(p[t, 0] - p[t, 1])
            out.append(float(np.linalg.norm(p[t] - (p[t - 1] + p[t + 1]) / 2, axis=1).max() / iod))
    return out


def against_truth(det: FaceDetector, london: Path, people: int, quiet: bool = False) -> dict:
    """Eye and mouth error against the London templates (in pupil distances; as
    benchmarks/detector_choice.py measures them), whole frame against region, on each person's
    neutral photo placed in a 640x360 frame with its face box 60, 110 and 160 px wide."""
    import cv2

    from benchmarks.detector_choice import truth
    from training.faces import box_from_eyes_mouth
    from training.synthesis.template import read_template

    errs = {k: [] for k in ("whole", "region")}
    for photo in sorted(london.glob("neutral/*.jpg"))[:people]:
        pts = read_template(photo.with_suffix(".tem"))
        gray = to_gray(cv2.imread(str(photo)))
        le, re_, mouth, ipd = truth(pts)
        side = float(box_from_eyes_mouth(le, re_, mouth)[2])
        for face_px in (60, 110, 160):
            s = face_px / side
            c = (le + re_) / 2
            m = np.float32([[s, 0, 320 - s * c[0]], [0, s, 170 - s * c[1]]])
            frame = cv2.warpAffine(gray, m, (640, 360), borderMode=cv2.BORDER_REPLICATE)
            tp = np.stack([le, re_, mouth]) * s + m[:, 2]
            w = det.detect_whole([frame])[0]
            r = det.detect_batch([frame], near=w)[0] if w is not None else None
            for k, row in (("whole", w), ("region", r)):
                if row is not None:
                    q = row[3:].reshape(6, 2)
                    errs[k].append(np.linalg.norm(np.stack([q[0], q[1], q[3]]) - tp, axis=1) / (ipd * s))
    figures = {}
    for k, e in errs.items():
        e = np.array(e)
        eye, mouth = e[:, :2].mean(1), e[:, 2]
        figures[k] = {
            "found": len(e),
            "eye": float(np.median(eye)),
            "eye_p95": float(np.percentile(eye, 95)),
            "mouth": float(np.median(mouth)),
            "mouth_p95": float(np.percentile(mouth, 95)),
        }
    if not quiet:
        print(f"\nagainst the London templates ({people} neutral photos x face boxes 60/110/160 px in 640x360):")
        print("| search | found | eye error median (p95), iod | mouth error median (p95), iod |")
        print("|---|---|---|---|")
        for k, f in figures.items():
            print(
                f"| {k} | {f['found']}/{3 * people} | {f['eye']:.3f} ({f['eye_p95']:.3f}) | {f['mouth']:.3f} ({f['mouth_p95']:.3f}) |"
            )
    return figures


ROLLS = (-25, -15, 15, 25)


def rolled_level(det: FaceDetector) -> float:
    """How far from level the eyes of an aligned crop are when the head rolls between frames: the
    astronaut upright gives `near`, then rolled by each of ROLLS degrees is searched in the region
    around it, aligned at 192 px, and its eyes found again in the crop (as tests/test_faces.py
    does for one roll). The largest vertical gap between the eyes, in pixels of 192."""
    import cv2
    from skimage import data

    from training.faces import CropConfig, align_face

    gray = to_gray(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    near = det.detect_whole([gray])[0]
    worst = 0.0
    for roll in ROLLS:
        m = cv2.getRotationMatrix2D((225, 120), roll, 1.0)
        rolled = cv2.warpAffine(gray, m, gray.shape[::-1], borderMode=cv2.BORDER_REPLICATE)
        row = det.detect_batch([rolled], near=near)[0]
        big = align_face(rolled, row[3:].reshape(6, 2), CropConfig(align=True), size=192)
        framed = cv2.copyMakeBorder(
            big, 96, 96, 96, 96, cv2.BORDER_REPLICATE
        )  # the network misses faces that fill the picture
        k = det.detect_whole([framed])[0][3:].reshape(6, 2)
        worst = max(worst, abs(float(k[0, 1] - k[1, 1])))
    return worst


def margin_study(det: FaceDetector, london: Path, people: int, margins: list[float]) -> None:
    """The region's side (REGION_MARGIN box sides around the last face) against landmark error on
    London faces and against the level of a rolled head's aligned crop."""
    from training import faces

    chosen = faces.REGION_MARGIN
    print(
        f"| region side (box sides) | eye error median (p95), iod | mouth error median (p95), iod | rolled {ROLLS} deg: eyes off level, max px of 192 |"
    )
    print("|---|---|---|---|")
    try:
        for margin in margins:
            faces.REGION_MARGIN = margin
            figures = against_truth(det, london, people, quiet=True)  # its "whole" does not depend on the margin
            f = figures["region"]
            mark = " (served)" if margin == chosen else ""
            print(
                f"| {margin:g}{mark} | {f['eye']:.3f} ({f['eye_p95']:.3f}) | {f['mouth']:.3f} ({f['mouth_p95']:.3f}) | {rolled_level(det):.1f} |"
            )
    finally:
        faces.REGION_MARGIN = chosen
    f = figures["whole"]
    print(
        f"| whole frame, for comparison | {f['eye']:.3f} ({f['eye_p95']:.3f}) | {f['mouth']:.3f} ({f['mouth_p95']:.3f}) | |"
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", action="append", default=[], help="a folder of MP4s (searched recursively)")
    ap.add_argument("--videos", type=int, default=12, help="videos taken from each --data folder, spread over it")
    ap.add_argument("--london", help="the London set (default: $RAMFER_LONDON_DIR), for the panned video")
    ap.add_argument(
        "--truth-people", type=int, default=102, help="London people for the error against their templates (0: skip)"
    )
    ap.add_argument(
        "--margins",
        type=float,
        nargs="+",
        help="only the study of the region's side: these REGION_MARGIN values "
        "against the London templates (--truth-people of them) and a rolled head",
    )
    args = ap.parse_args()
    det = FaceDetector()
    london = args.london or os.environ.get("RAMFER_LONDON_DIR")
    if args.margins:
        if not london:
            sys.exit("--margins needs the London set: --london DIR or RAMFER_LONDON_DIR")
        return margin_study(det, Path(london), args.truth_people, args.margins)
    if london and args.truth_people:
        against_truth(det, Path(london), args.truth_people)
    det.detect_video(videos(args)[0][1][:16])  # warm-up
    rows = []
    all_jw, all_jr = [], []
    all_err, t_whole, t_region, n_frames = [], 0.0, 0.0, 0
    for name, grays in videos(args):
        t = time.perf_counter()
        whole = [det.detect_whole(grays[b : b + 16]) for b in range(0, len(grays), 16)]
        tw = time.perf_counter() - t
        whole = [r for batch in whole for r in batch]
        t = time.perf_counter()
        region = det.detect_video(grays)
        tr = time.perf_counter() - t
        jw, jr = jitter(np.stack([np.full(15, np.nan, np.float32) if w is None else w for w in whole])), jitter(region)
        all_jw, all_jr = all_jw + jw, all_jr + jr
        both = [(w, r) for w, r in zip(whole, region) if w is not None and not np.isnan(r[0])]
        err = []
        for w, r in both:
            pw, pr = w[3:].reshape(6, 2)[:4], r[3:].reshape(6, 2)[:4]
            iod = np.linalg.norm(pw[0] - pw[1])
            err.append(float(np.linalg.norm(pw - pr, axis=1).max() / iod))
        all_err += err
        t_whole, t_region, n_frames = t_whole + tw, t_region + tr, n_frames + len(grays)
        rows.append(
            f"| {name} | {len(grays)} | {sum(w is not None for w in whole)} | {int((~np.isnan(region[:, 0])).sum())} | "
            f"{statistics.median(err):.3f} | {np.percentile(err, 95):.3f} | {statistics.median(jw):.3f} | {statistics.median(jr):.3f} | {1000 * tw / len(grays):.1f} | {1000 * tr / len(grays):.1f} |"
        )
    print(
        "| video | frames | faces: whole frame | faces: region | landmark gap median (iod) | p95 | shake: whole | shake: region | whole ms/frame | region ms/frame |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(
        f"\nall {n_frames} frames: landmark gap median {statistics.median(all_err):.3f} iod, p95 {np.percentile(all_err, 95):.3f}, "
        f"max {max(all_err):.3f}; shake (median, iod) whole {statistics.median(all_jw):.3f}, region {statistics.median(all_jr):.3f}; whole {1000 * t_whole / n_frames:.1f} ms/frame, region {1000 * t_region / n_frames:.1f} ms/frame "
        f"({t_whole / t_region:.2f}x)"
    )


if __name__ == "__main__":
    main()
