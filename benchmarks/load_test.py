"""Load test: N real videos, C at a time, against the embedded service (`python -m service serve`
with W worker processes), loopback only, bounded in count and time.

Videos: synthetic expression clips (training.synthesis.drawn, 3 s, 640x490, H.264), 10 distinct ones sent
round-robin. Each answer must be a 200 whose result equals what the pipeline gives in-process
for that video (expression and vote counts): "answered correctly", and none lost. Prints p50/p95
latency, throughput, and the peak resident memory (VmHWM) of the API process and each worker.

    python benchmarks/load_test.py [--videos 50] [--concurrency 8] [--workers 2] [--timeout 1800]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from live_service import running_service  # noqa: E402


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        out += [int(c) for c in text]
    return out


def make_videos(folder: Path, n: int) -> list[Path]:
    from training.synthesis.drawn import CLASSES, make_subject, render_sequence
    from videos import write_video

    paths = []
    for i in range(n):
        rng = np.random.default_rng([7, i])
        frames, _ = render_sequence(make_subject(rng), CLASSES[i % 7], 90, rng)
        paths.append(write_video(folder / f"v{i:02d}_{CLASSES[i % 7]}.mp4", frames))
    return paths


async def send(client: httpx.AsyncClient, url: str, path: Path, sem: asyncio.Semaphore):
    async with sem:
        start = time.perf_counter()
        r = await client.post(f"{url}/predict?wait=600", files={"file": (path.name, path.read_bytes(), "video/mp4")})
        return path, r, time.perf_counter() - start


async def run_load(url: str, videos: list[Path], n: int, concurrency: int):
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=900) as client:
        return await asyncio.gather(*(send(client, url, videos[i % len(videos)], sem) for i in range(n)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--videos", type=int, default=50)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--distinct", type=int, default=10)
    ap.add_argument("--timeout", type=float, default=1800)
    args = ap.parse_args()

    from service.pipeline import analyse_video
    from service.settings import Settings
    from service.worker import load_predictor

    tmp = Path(tempfile.mkdtemp(prefix="ramfer-load-"))
    videos = make_videos(tmp, args.distinct)
    settings = Settings(storage_dir=tmp / "direct")
    predictor = load_predictor(settings)
    expected = {v.name: analyse_video(v, predictor, settings) for v in videos}

    env = {"STORAGE_DIR": str(tmp / "storage"), "MAX_QUEUED_JOBS": str(args.videos + 10)}
    with running_service(env, workers=args.workers, timeout=180) as (url, server):
        start = time.perf_counter()
        answers = asyncio.run(asyncio.wait_for(run_load(url, videos, args.videos, args.concurrency), args.timeout))
        wall = time.perf_counter() - start
        procs = children(server.pid)
        rss = {"api (serve)": peak_rss_mb(server.pid)}
        for pid in procs:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            name = "worker" if "service worker" in cmd else "redis" if "redis-server" in cmd else cmd[:30]
            rss[f"{name} {pid}"] = peak_rss_mb(pid)

    ok = [a for a in answers if a[1].status_code == 200]
    correct = [a for a in ok if a[1].json()["expression"] == expected[a[0].name]["expression"]
               and a[1].json()["votes"] == expected[a[0].name]["votes"]]
    job_ids = {a[1].json()["job_id"] for a in ok}
    lat = sorted(a[2] for a in answers)
    video_s = sum(expected[a[0].name]["video"]["duration_s"] for a in answers)
    print(f"# {args.videos} videos ({args.distinct} distinct, {video_s / args.videos:.1f} s each), "
          f"{args.concurrency} at a time, {args.workers} workers, {os.cpu_count()} cores")
    print(f"answered 200: {len(ok)}/{args.videos}; correct (same result as in-process): {len(correct)}/{args.videos}; "
          f"distinct job ids: {len(job_ids)}; other statuses: {sorted({a[1].status_code for a in answers} - {200})}")
    print(f"latency p50 {statistics.median(lat):.1f} s, p95 {lat[int(0.95 * (len(lat) - 1))]:.1f} s, max {lat[-1]:.1f} s")
    print(f"throughput {args.videos / wall:.2f} videos/s, {video_s / wall:.1f} video-seconds/s ({wall:.0f} s wall)")
    print("peak RSS (VmHWM): " + ", ".join(f"{k} {v:.0f} MB" for k, v in rss.items()))
    sys.exit(0 if len(correct) == args.videos else 1)


if __name__ == "__main__":
    main()
