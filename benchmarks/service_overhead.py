"""Where the time goes on a real-size video, and what the service adds to the pipeline.

Makes a 20 s, 640x360, 30 fps H.264 video of a real face (skimage's astronaut, panned and
zoomed), then, interleaved round by round so machine noise hits all alike:
  * decode only: PyAV decoding every frame to gray (the floor no pipeline beats)
  * direct: `analyse_video` in this process (what `python -m service predict` runs), per stage
  * service: POST /predict?wait=... to a real `python -m service serve` (uvicorn, embedded
    Redis, one worker process) over loopback HTTP
and prints medians, the ratios, and the service's overhead over the direct call.

    python benchmarks/service_overhead.py [--rounds 3] [--seconds 20] [--model training/models/default]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from live_service import running_service


def make_video(path: Path, seconds: float) -> Path:
    from videos import astronaut_frames, write_video

    return write_video(path, astronaut_frames(int(seconds * 30), zoom=(0.8, 1.3)), fps=30)


def decode_only(path: Path) -> float:
    from training.video import read_frames

    start = time.perf_counter()
    n = sum(1 for _ in read_frames(path))
    assert n > 0
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--model", default=None)
    ap.add_argument("--video", default=None, help="use this video instead of the generated one")
    args = ap.parse_args()

    from service.pipeline import analyse_video
    from service.settings import Settings
    from service.worker import load_predictor

    tmp = Path(tempfile.mkdtemp(prefix="ramfer-bench-"))
    video = Path(args.video) if args.video else make_video(tmp / "face.mp4", args.seconds)
    overrides = {"storage_dir": tmp / "storage"} | ({"model_dir": Path(args.model)} if args.model else {})
    settings = Settings(**overrides)
    predictor = load_predictor(settings)

    env = {"RAMFER_STORAGE_DIR": str(settings.storage_dir), "RAMFER_MODEL_DIR": str(settings.model_dir)}
    with running_service(env, workers=1) as (base, _):
        decode, direct, service, stages = [], [], [], {}
        for _ in range(args.rounds):
            decode.append(decode_only(video))
            start = time.perf_counter()
            result = analyse_video(video, predictor, settings, out_dir=tmp / "direct")
            direct.append(time.perf_counter() - start)
            for k, v in result["timings_ms"].items():
                stages.setdefault(k, []).append(v)
            start = time.perf_counter()
            with open(video, "rb") as f:
                r = httpx.post(f"{base}/predict?wait=300", files={"file": ("face.mp4", f, "video/mp4")}, timeout=400)
            service.append(time.perf_counter() - start)
            assert r.status_code == 200, r.text
            assert r.json()["expression"] == result["expression"]

    med = statistics.median
    v = result["video"]
    print(
        f"# {v['width']}x{v['height']}, {v['frames']} frames, {v['duration_s']:.1f} s; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, median of {args.rounds} rounds"
    )
    print("| stage | ms | share of direct total |")
    print("|---|---|---|")
    for k in ("decode", "detect", "crop", "infer", "vote", "render", "total"):
        if k in stages:
            print(f"| {k} | {med(stages[k]):.0f} | {med(stages[k]) / med(stages['total']):.0%} |")
    print()
    print("| path | seconds | video frames/s | x real time | vs decode only |")
    print("|---|---|---|---|---|")
    for name, t in (("decode only (floor)", decode), ("direct pipeline", direct), ("HTTP + Redis + worker", service)):
        print(
            f"| {name} | {med(t):.2f} | {v['frames'] / med(t):.0f} | {v['duration_s'] / med(t):.2f} | {med(t) / med(decode):.1f}x |"
        )
    print(
        f"\nservice overhead over the direct call: {med(service) - med(direct):+.2f} s "
        f"({(med(service) - med(direct)) / med(direct):+.0%})"
    )


if __name__ == "__main__":
    main()
