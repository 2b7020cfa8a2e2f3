"""Live sessions (WS /live) against a real `python -m service serve` (embedded Redis, one live worker
process, one torch thread): how long from a frame's capture to its clip's label, and how many
sessions at once one CPU live worker keeps up with.

The frames are JPEGs (640x360, quality 80) of a real face (London set "smiling/091_08", CC BY 4.0)
drifting across the frame, sent at --fps, each stamped with its capture time (time.time() when
sent, as a camera's). For each clip message, latency = when it arrived - the capture time of the
clip's last frame: it includes the tracker's smoothing lag (3 frames: a face is the mean of its
detections within +-3 frames), the wait for the clip's 8th frame is not counted. For k sessions at
once: each session's p50/p95 latency, frames dropped (they came faster than the worker read them),
and the frame rate analysed.

    python benchmarks/live_latency.py [--fps 15] [--seconds 20] [--sessions 1 2 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from live_service import running_service  # noqa: E402


def face_jpegs(n: int = 90) -> list[bytes]:
    from videos import london_tile, people_frames

    tile = london_tile("smiling/091_08", 180)
    frames = people_frames(n, [(tile, lambda i: (150 + 3 * (i if i < n // 2 else n - i), 90))])
    return [cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes() for f in frames]


def one_session(url: str, jpegs: list[bytes], fps: float, seconds: float, out: dict) -> None:
    from service.client import LiveSession

    latencies, labels = [], []
    with LiveSession(url, fps=fps) as session:

        def feed():
            start = time.time()
            for i in range(int(seconds * fps)):
                time.sleep(max(start + i / fps - time.time(), 0))
                session.send(jpegs[i % len(jpegs)], time.time())
            session.stop()

        sender = threading.Thread(target=feed, daemon=True)
        sender.start()
        for m in session.messages(timeout=60):
            now = time.time()
            if m["type"] == "clip":
                latencies.append(now - m["end_s"])
                labels.append(m["label"])
            elif m["type"] == "end":
                out.update(m)
        sender.join()
    out["latencies"], out["labels"] = latencies, labels


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))] if values else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fps", type=float, default=15.0)
    ap.add_argument("--seconds", type=float, default=20.0, help="each round's length")
    ap.add_argument("--sessions", type=int, nargs="+", default=[1, 2, 3], help="sessions at once, one round each")
    args = ap.parse_args()
    jpegs = face_jpegs()
    most = max(args.sessions)
    env = {
        "RAMFER_STORAGE_DIR": tempfile.mkdtemp(prefix="ramfer-live-bench-"),
        "RAMFER_TORCH_THREADS": "1",
        "RAMFER_LIVE_WORKERS": "1",
        "RAMFER_LIVE_SESSIONS_PER_WORKER": str(most),
        "RAMFER_LIVE_MAX_SESSIONS": str(most),
    }
    from importlib.metadata import version

    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {version('torch')}; "
        f"one live worker, 1 torch thread; {args.fps:g} fps, {args.seconds:g} s a round; load average at start "
        f"{os.getloadavg()[0]:.1f}"
    )
    with running_service(env) as (url, _):
        deadline = time.monotonic() + 120
        while httpx.get(url + "/readyz").json().get("live_workers", 0) < 1:
            assert time.monotonic() < deadline, "no live worker"
            time.sleep(0.5)
        print(
            "| sessions | clips | latency p50 (s) | latency p95 (s) | frames dropped | fps analysed (each) | labels happy |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for k in args.sessions:
            outs = [{} for _ in range(k)]
            threads = [threading.Thread(target=one_session, args=(url, jpegs, args.fps, args.seconds, o)) for o in outs]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            lat = [x for o in outs for x in o["latencies"]]
            sent = sum(o["frames_received"] for o in outs)
            dropped = sum(o["dropped"] for o in outs)
            labels = [x for o in outs for x in o["labels"]]
            fps = ", ".join(f"{o['fps_analysed']:.1f}" for o in outs)
            print(
                f"| {k} | {len(lat)} | {statistics.median(lat):.3f} | {pct(lat, 0.95):.3f} | {dropped}/{sent} "
                f"({100 * dropped / max(sent, 1):.0f} %) | {fps} | {100 * labels.count('happy') / max(len(labels), 1):.0f} % |",
                flush=True,
            )
    print(f"# load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
