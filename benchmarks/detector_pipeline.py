"""The whole pipeline on a real face video, end to end: how long it takes against decoding alone and
against the `fer` package's own process (optionally against an older checkout, and with RAMFER_DETECT_EVERY),
and how stable the clip labels are when the crop moves a little or the detector skips frames.

The video: 20 s, 640x360, 30 fps, H.264, a real face (benchmarks/face_video.py: a London-set
person's neutral then smiling photo, panned and zoomed; made here, never committed).

Speed (--rounds rounds, each runs every contender once, in turn):
* decode only: PyAV decoding every frame (threaded), nothing else, in this process;
* ours: `python -m service predict VIDEO --json`, its own process (model load included), with
  this tree's code (BlazeFace);
* ours with RAMFER_DETECT_EVERY=K (--detect-every K ...): the same, the detector on every K-th frame;
* ours before (--before DIR): the same command in an older checkout of ramfer (e.g. one exported
  with `git archive`, to time a change of detector or model against it);
* fer: the `fer` package's own process on the same file, `--fer-python` being the python of a
  venv where `pip install fer` ran: FER(mtcnn=False) (OpenCV's Haar cascade and fer's CNN, its defaults otherwise)
  through fer's Video.analyze, as fer's README runs a video (no frames or video written).
  fer pulls torch < 2.3 (CUDA wheels) through facenet-pytorch, used only for mtcnn=True: install
  it with `pip install --no-deps fer && pip install tensorflow 'opencv-contrib-python<5' pandas
  'moviepy<2' ffmpeg-python Pillow requests` (fer calls cv2.waitKey even with display=False,
  so OpenCV must be a GUI build, and < 5 for its Haar cascade).
Printed: median seconds, and the ratios (fer / ours, ours / decode only).

Stability (--stability, in this process, analyse_video as the service runs it): the share of
clip labels that stay the same as the undisturbed run's when (a) each frame's crop is moved by a
random +-2 px of the 48 px crop (uniform, x and y, seeded) and (b) the detector runs on every
2nd frame only (Settings.detect_every = 2), with the served detector (BlazeFace).

    python benchmarks/detector_pipeline.py [--rounds 3] [--fer-python /tmp/fervenv/bin/python]
                                           [--before /tmp/ramfer-main] [--stability] [--people 013 ...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.face_video import LONDON, write_face_video  # noqa: E402

FER_SCRIPT = """
import sys
try:
    from fer import FER, Video
except ImportError:  # fer >= 25: the classes live in submodules
    from fer.fer import FER
    from fer.classes import Video
video = Video(sys.argv[1], outdir=sys.argv[2])
raw = video.analyze(FER(mtcnn=False), display=False, save_frames=False, save_video=False, annotate_frames=False, zip_images=False)
print(len(raw), "frames with a face")
"""


def decode_only(path: Path) -> float:
    import av

    start = time.perf_counter()
    with av.open(str(path)) as c:
        c.streams.video[0].thread_type = "AUTO"
        n = sum(1 for _ in c.decode(video=0))
    assert n > 0
    return time.perf_counter() - start


def timed(cmd: list[str], env: dict | None = None, cwd: Path | None = None) -> tuple[float, str]:
    start = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=1800)
    took = time.perf_counter() - start
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {p.stderr[-2000:]}")
    return took, p.stdout


def speed(video: Path, args) -> None:
    runs: dict[str, list[float]] = {"decode only (PyAV)": []}
    stages: dict[str, list[dict]] = {}
    ours_env = {**os.environ, **({"OMP_NUM_THREADS": str(args.threads)} if args.threads else {})}
    contenders = {
        "ours (BlazeFace)": (
            [sys.executable, "-m", "service", "predict", str(video), "--json"],
            {**ours_env, "PYTHONPATH": str(ROOT)},
            ROOT,
        )
    }
    for k in args.detect_every:
        contenders[f"ours (BlazeFace, RAMFER_DETECT_EVERY={k})"] = (
            contenders["ours (BlazeFace)"][0],
            {**contenders["ours (BlazeFace)"][1], "RAMFER_DETECT_EVERY": str(k)},
            ROOT,
        )
    if args.before:
        before = Path(args.before).resolve()
        contenders[f"ours before ({before.name})"] = (
            [sys.executable, "-m", "service", "predict", str(video), "--json"],
            {**ours_env, "PYTHONPATH": str(before)},
            before,
        )
    if args.fer_python:
        out = Path(tempfile.mkdtemp(prefix="fer-out-"))
        contenders["fer package (own process)"] = ([args.fer_python, "-c", FER_SCRIPT, str(video), str(out)], None, out)
    for r in range(args.rounds):
        runs["decode only (PyAV)"].append(decode_only(video))
        for name, (cmd, env, cwd) in contenders.items():
            took, out = timed(cmd, env, cwd)
            runs.setdefault(name, []).append(took)
            if name.startswith("ours"):
                stages.setdefault(name, []).append(json.loads(out)["timings_ms"])
            print(f"round {r + 1}: {name} {took:.2f} s", file=sys.stderr)
    med = {k: statistics.median(v) for k, v in runs.items()}
    dec = med["decode only (PyAV)"]
    print(f"## End to end, {video.name}: 20 s, 640x360, 30 fps; median of {args.rounds} interleaved rounds\n")
    print("| process | seconds (median) | all rounds | / decode only | fer / this |")
    print("|---|---|---|---|---|")
    fer = med.get("fer package (own process)")
    for k, v in med.items():
        print(
            f"| {k} | {v:.2f} | {', '.join(f'{x:.2f}' for x in runs[k])} | {v / dec:.1f}x | {f'{fer / v:.2f}x' if fer else '-'} |"
        )
    for name, st in stages.items():
        keys = list(st[0])
        print(
            f"\n{name}, stages inside the pipeline (median ms): "
            + ", ".join(f"{k} {statistics.median(s[k] for s in st):.0f}" for k in keys)
        )


def stability(videos: list[Path], args) -> None:
    import service.analysis as pipeline  # where each person's crops are cut (Person.add), replaced below by a jittered cut
    from service.pipeline import Predictor, analyse_video
    from service.settings import Settings

    base = Predictor.from_settings(Settings())
    detectors = {"blazeface": base.detector}
    crop_frame = pipeline.crop_frame

    def jittered(rng):
        def crop(gray, face, crop, size=None):
            face = np.array(face, np.float32)
            step = 2 * face[2] * crop.scale / crop.size  # 2 px of the 48 px crop, in frame pixels
            d = rng.uniform(-step, step, 2).astype(np.float32)
            face[:2] += d
            face[3:] += np.tile(d, (len(face) - 3) // 2)
            return crop_frame(gray, face, crop, size)

        return crop

    rows = {}
    for name, det in detectors.items():
        base.detector = det
        same = {"crop jittered +-2 px": [], "detect every 2nd frame": []}
        for v in videos:
            pipeline.crop_frame = crop_frame
            ref = [c["label"] for c in analyse_video(v, base, Settings())["clips"]]
            pipeline.crop_frame = jittered(np.random.default_rng(0))
            jit = [c["label"] for c in analyse_video(v, base, Settings())["clips"]]
            pipeline.crop_frame = crop_frame
            every2 = [c["label"] for c in analyse_video(v, base, Settings(detect_every=2))["clips"]]
            same["crop jittered +-2 px"] += [a == b for a, b in zip(ref, jit)]
            same["detect every 2nd frame"] += [a == b for a, b in zip(ref, every2)]
            print(f"{name} {v.name}: {', '.join(f'{k} {np.mean(s):.3f}' for k, s in same.items())}", file=sys.stderr)
        rows[name] = {k: (int(np.sum(s)), len(s)) for k, s in same.items()}
    pipeline.crop_frame = crop_frame
    print(f"\n## Clip labels unchanged ({len(videos)} videos: London people {', '.join(args.people)})\n")
    print("| detector | crop jittered +-2 px (of 48) | detect every 2nd frame |")
    print("|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | " + " | ".join(f"{a / n:.1%} ({a}/{n})" for a, n in r.values()) + " |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--london", default=str(LONDON))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--fer-python", default=None, help="python of a venv with `pip install fer`")
    ap.add_argument(
        "--before", default=None, help="an older ramfer checkout to time too (e.g. git archive of an earlier commit)"
    )
    ap.add_argument(
        "--detect-every",
        type=int,
        nargs="*",
        default=[],
        metavar="K",
        help="also time ours with the detector on every K-th frame (Settings.detect_every)",
    )
    ap.add_argument("--stability", action="store_true", help="also measure clip-label stability")
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--people", nargs="+", default=["013"], help="London ids: the speed video is the first's")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads for our processes (OMP_NUM_THREADS; fer keeps its defaults). On a shared, "
        "oversubscribed machine 1 avoids torch's threads spinning against each other",
    )
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    folder = Path(tempfile.mkdtemp(prefix="ramfer-detector-"))
    videos = [write_face_video(folder / f"london_{p}.mp4", Path(args.london), p, args.seconds) for p in args.people]
    if not args.no_speed:
        speed(videos[0], args)
    if args.stability:
        stability(videos, args)


if __name__ == "__main__":
    main()
