"""What a long live session holds: memory against frames streamed, with people coming and going.

A live session (service.live_worker.StreamAnalysis, the real model, in this process) is fed N frames
of a camera at 15 fps in which a face (the astronaut of scikit-image, public domain) is in view
for 40 frames and gone for 40, over and over: every appearance is a new person to the tracker.
Python's allocations (tracemalloc: numpy's arrays included, torch's tensor storage not) are read
every `--every` frames once five people have come and gone (the first clips fill the model's and
the allocator's caches); the growth per hour of camera is the least-squares slope. The baseline, in the same run, is the same session with frame times and gone
tracks never forgotten (what a session did before they were trimmed).

    OMP_NUM_THREADS=1 python benchmarks/live_memory.py --frames 3000
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from pathlib import Path
from unittest import mock

import cv2
import numpy as np

from service.live_worker import StreamAnalysis
from service.settings import Settings
from service.worker import load_predictor

FPS = 15.0
WARM_UP = 400  # frames: five people in and out


def camera(n: int) -> list[bytes]:
    """n JPEG frames (480x320): the astronaut's face in view for 40 frames, then gone for 40."""
    from skimage import data

    face = cv2.cvtColor(data.astronaut()[20:220, 130:330], cv2.COLOR_RGB2BGR)
    face = cv2.resize(face, (160, 160))
    ramp = np.tile(np.linspace(70, 150, 480, dtype=np.float32), (320, 1)).astype(np.uint8)
    empty = cv2.cvtColor(ramp, cv2.COLOR_GRAY2BGR)
    shown = [empty.copy() for _ in range(3)]
    for k, s in enumerate(shown):
        s[80:240, 160 + k : 320 + k] = face
    frames = [shown[i % 3] if i % 80 < 40 else empty for i in range(n)]
    encoded = {id(f): cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes() for f in frames}
    return [encoded[id(f)] for f in frames]


def run(predictor, settings: Settings, jpegs: list[bytes], every: int, forget: bool) -> dict:
    patches = (
        []
        if forget
        else [
            mock.patch("service.pipeline.FrameTimes.forget_before", lambda self, i: None),
            mock.patch("training.tracks.Tracker.forget_gone", lambda self, i: None),
        ]
    )
    for p in patches:
        p.start()
    try:
        session = StreamAnalysis("bench", predictor, settings, fps=FPS)
        tracemalloc.start()
        points, people, start = [], set(), time.perf_counter()
        for i, jpeg in enumerate(jpegs):
            for m in session.add(i, i / FPS, jpeg):
                people.add(m.get("person"))
            if i >= WARM_UP and i % every == 0:
                gc.collect()  # what is held, not what the collector has yet to free
                points.append((i, tracemalloc.get_traced_memory()[0]))
        seconds = time.perf_counter() - start
        tracemalloc.stop()
    finally:
        for p in patches:
            p.stop()
    frames, held = np.array(points, dtype=np.float64).T
    slope = np.polyfit(frames, held, 1)[0]  # bytes a frame
    return {
        "held_first_mb": held[0] / 1e6,
        "held_last_mb": held[-1] / 1e6,
        "mb_per_hour": slope * FPS * 3600 / 1e6,
        "people": len(people - {None}),
        "ms_per_frame": 1000 * seconds / len(jpegs),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=3000, help="frames streamed (15 fps: 3000 is 200 s of camera)")
    ap.add_argument("--every", type=int, default=40, help="read the memory every this many frames")
    ap.add_argument("--model", type=Path, default=None, help="checkpoint folder (default: the served one)")
    args = ap.parse_args()
    settings = Settings(torch_threads=1, **({"model_dir": args.model} if args.model else {}))
    predictor = load_predictor(settings)
    jpegs = camera(args.frames)
    print(
        f"# a live session fed {args.frames} frames at {FPS:g} fps, a face in view 40 frames and gone 40; "
        f"python allocations (tracemalloc) read every {args.every} frames\n"
    )
    print(
        "| session | people seen | held after the warm-up MB | held at the end MB | growth MB per hour of camera | ms a frame |"
    )
    print("|---|---|---|---|---|---|")
    for name, forget in (("frame times and gone tracks kept (baseline)", False), ("as served: forgotten", True)):
        r = run(predictor, settings, jpegs, args.every, forget)
        print(
            f"| {name} | {r['people']} | {r['held_first_mb']:.2f} | {r['held_last_mb']:.2f} | {r['mb_per_hour']:.2f} "
            f"| {r['ms_per_frame']:.1f} |"
        )


if __name__ == "__main__":
    main()
