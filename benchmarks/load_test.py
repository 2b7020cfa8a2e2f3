"""Load test: N real videos, C at a time, against the service in one or both of two setups, started
side by side in the same run on this machine (loopback only), bounded in count and time:

* one-host: `python -m service serve --workers W` (embedded Redis on a unix socket, W local
  worker processes, one shared RAMFER_STORAGE_DIR);
* no-shared-disk: the API (`serve` with RAMFER_REDIS_URL) and W separate `python -m service worker`
  processes, each with its own RAMFER_STORAGE_DIR and TMPDIR, sharing only a Redis on TCP with a password
  and an S3 bucket (a real SeaweedFS server): the "workers on other machines" setup of docs/operations.md,
  as tests/test_distributed.py starts it (tests/live_cluster.py). Its workers get the torch
  threads `serve` gives its own (cores / W each), so the two differ only in Redis and storage.

The N videos go to each setup in R rounds (--rounds, default 2) of about N/R, the setups taking
turns (A B, B A, A B, ...) so that a change in the machine's load hits both alike; latency counts
from the upload to the result (a 202 past the API's RAMFER_MAX_WAIT_S is followed by polling the job).
Videos: synthetic expression clips (training.synthesis.drawn, 640x490, H.264; --frames, default 90
= 3 s), --distinct of them (default 10) sent round-robin, the same to each setup. Each answer must
be a finished job whose result equals what the pipeline gives in-process for that video
(expression and vote counts); "lost": no finished result (an error status, a failed job, no answer
in time), "wrong": a result that differs. Prints one table: p50/p95 latency, throughput, and the
peak resident memory (VmHWM) of the API process and each worker. Exit status 0 when nothing is lost
or wrong.

    python benchmarks/load_test.py [--setups one-host,no-shared-disk] [--videos 50] [--concurrency 8] \\
        [--workers 2] [--rounds 2] [--timeout 1800]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from live_cluster import running_cluster
from live_service import free_port, running_service

SETUPS = ("one-host", "no-shared-disk")
POLL_S = 0.2


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


def make_videos(folder: Path, n: int, frames: int) -> list[Path]:
    from videos import write_video

    from training.synthesis.drawn import render_sequence
    from training.synthesis.drawn_face import make_subject
    from training.synthesis.facs import CLASSES

    paths = []
    for i in range(n):
        rng = np.random.default_rng([7, i])
        clip, _ = render_sequence(make_subject(rng), CLASSES[i % 7], frames, rng)
        paths.append(write_video(folder / f"v{i:02d}_{CLASSES[i % 7]}.mp4", clip))
    return paths


@dataclass
class Answer:
    video: Path
    status: str  # "finished", an HTTP status, "failed: <code>", or an exception's name
    result: dict | None
    job_id: str | None
    seconds: float


@dataclass
class Setup:
    name: str
    url: str
    rss: dict  # what to read peak RSS of: {"api": pid, "workers": [pid, ...]}
    answers: list[Answer] = field(default_factory=list)
    wall_s: float = 0.0
    notes: list[str] = field(default_factory=list)


async def send(client: httpx.AsyncClient, url: str, path: Path, sem: asyncio.Semaphore, deadline: float) -> Answer:
    async with sem:
        start = time.perf_counter()
        status, result, job_id = "no answer", None, None
        try:
            r = await client.post(
                f"{url}/predict?wait=600", files={"file": (path.name, path.read_bytes(), "video/mp4")}
            )
            status = str(r.status_code)
            if r.status_code == 200:
                status, result, job_id = "finished", r.json(), r.json()["job_id"]
            elif r.status_code == 202:  # past RAMFER_MAX_WAIT_S: the job is still running, follow it
                job_id = r.json()["job_id"]
                while time.monotonic() < deadline:
                    await asyncio.sleep(POLL_S)
                    view = (await client.get(r.json()["status_url"])).json()
                    if view["status"] == "finished":
                        status, result = "finished", view["result"]
                        break
                    if view["status"] == "failed":
                        status = f"failed: {view['error']['code']}"
                        break
                else:
                    status = "timed out"
        except (httpx.HTTPError, ValueError, KeyError) as e:
            status = type(e).__name__
        return Answer(path, status, result, job_id, time.perf_counter() - start)


async def run_load(url: str, videos: list[Path], concurrency: int, timeout: float) -> list[Answer]:
    sem = asyncio.Semaphore(concurrency)
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=10)) as client:
        return await asyncio.gather(*(send(client, url, v, sem, deadline) for v in videos))


@contextmanager
def one_host(root: Path, workers: int, queued: int):
    env = {"RAMFER_STORAGE_DIR": str(root / "storage"), "RAMFER_MAX_QUEUED_JOBS": str(queued)}
    with running_service(env, workers=workers, timeout=240) as (url, server):
        procs = children(server.pid)
        is_worker = [
            p for p in procs if b"service worker" in Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ")
        ]
        yield Setup("one-host", url, {"api": server.pid, "workers": is_worker})


@contextmanager
def no_shared_disk(root: Path, workers: int, queued: int):
    from s3server import SeaweedS3

    from service.embedded import EmbeddedRedis

    with ExitStack() as stack:
        s3 = SeaweedS3()
        stack.callback(s3.cleanup)
        s3.start()
        redis = EmbeddedRedis(port=free_port(), password=uuid.uuid4().hex)
        stack.callback(redis.cleanup)
        threads = max(1, (os.cpu_count() or 1) // workers)  # what `serve --workers W` gives each of its own
        env = {"RAMFER_TORCH_THREADS": str(threads), "RAMFER_MAX_QUEUED_JOBS": str(queued)}
        cluster = stack.enter_context(running_cluster(root, redis.start(), s3.env(), workers=workers, env=env))
        setup = Setup(
            "no-shared-disk", cluster.url, {"api": cluster.api.pid, "workers": [w.pid for w in cluster.workers]}
        )
        yield setup
        left = {
            "uploads in the bucket": len(s3.keys("uploads/")),
            "files in the processes' TMPDIR": sum(
                1 for e in cluster.envs.values() for p in Path(e["TMPDIR"]).rglob("*") if p.is_file()
            ),
            "processes' RAMFER_STORAGE_DIR made": sum(
                Path(e["RAMFER_STORAGE_DIR"]).exists() for e in cluster.envs.values()
            ),
        }
        setup.notes.append("left behind: " + ", ".join(f"{k} {v}" for k, v in left.items()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--setups", default=",".join(SETUPS), help=f"comma-separated, of {', '.join(SETUPS)}")
    ap.add_argument("--videos", type=int, default=50, help="videos sent to each setup")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2, help="worker processes in each setup")
    ap.add_argument("--rounds", type=int, default=2, help="the videos in this many rounds, the setups taking turns")
    ap.add_argument("--distinct", type=int, default=10)
    ap.add_argument("--frames", type=int, default=90, help="frames per video (30 fps)")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds for each setup's share of a round")
    args = ap.parse_args()
    names = [s.strip() for s in args.setups.split(",") if s.strip()]
    if not names or set(names) - set(SETUPS):
        ap.error(f"--setups: choose from {', '.join(SETUPS)}")

    from service.pipeline import analyse_video
    from service.settings import Settings
    from service.worker import load_predictor

    tmp = Path(tempfile.mkdtemp(prefix="ramfer-load-"))
    videos = make_videos(tmp / "videos", args.distinct, args.frames)
    settings = Settings(storage_dir=tmp / "direct")
    predictor = load_predictor(settings)
    expected = {v.name: analyse_video(v, predictor, settings) for v in videos}
    del predictor
    sent = [videos[i % len(videos)] for i in range(args.videos)]
    rounds = [sent[len(sent) * r // args.rounds : len(sent) * (r + 1) // args.rounds] for r in range(args.rounds)]

    starts = {"one-host": one_host, "no-shared-disk": no_shared_disk}
    with ExitStack() as stack:  # every setup up for the whole run; only one under load at a time
        setups = [stack.enter_context(starts[n](tmp / n, args.workers, args.videos + 10)) for n in names]
        for r, chunk in enumerate(rounds):
            for setup in setups if r % 2 == 0 else setups[::-1]:
                start = time.perf_counter()
                setup.answers += asyncio.run(run_load(setup.url, chunk, args.concurrency, args.timeout))
                setup.wall_s += time.perf_counter() - start
        for setup in setups:
            setup.rss = {
                "api": peak_rss_mb(setup.rss["api"]),
                "workers": [peak_rss_mb(p) for p in setup.rss["workers"]],
            }
    # (the no-shared-disk setup notes what it left behind as it stops, above)

    video_s = statistics.mean(e["video"]["duration_s"] for e in expected.values())
    print(
        f"# {args.videos} videos per setup ({args.distinct} distinct, {video_s:.1f} s each), {args.concurrency} at a time, "
        f"{args.workers} workers per setup, {os.cpu_count()} cores; {args.rounds} round(s), the setups taking turns"
    )
    print()
    print("| setup | videos | lost | wrong | p50 s | p95 s | throughput videos/min | peak RSS MB: API / workers |")
    print("|---|---|---|---|---|---|---|---|")
    failures = 0
    details = []
    for s in setups:
        done = [a for a in s.answers if a.status == "finished"]
        wrong = [
            a
            for a in done
            if a.result["expression"] != expected[a.video.name]["expression"]
            or a.result["votes"] != expected[a.video.name]["votes"]
        ]
        lost = len(s.answers) - len(done)
        failures += lost + len(wrong)
        lat = sorted(a.seconds for a in s.answers)
        p95 = lat[math.ceil(0.95 * len(lat)) - 1]  # nearest rank: the smallest latency 95 % are at or below
        print(
            f"| {s.name} | {len(s.answers)} | {lost} | {len(wrong)} | {statistics.median(lat):.1f} | {p95:.1f} | "
            f"{60 * len(s.answers) / s.wall_s:.1f} | {s.rss['api']:.0f} / {', '.join(f'{w:.0f}' for w in s.rss['workers'])} |"
        )
        others = sorted({a.status for a in s.answers} - {"finished"})
        details.append(
            f"{s.name}: {len({a.job_id for a in done})} distinct job ids of {len(done)} finished; "
            f"not finished: {others or 'none'}; {s.wall_s:.0f} s under load; max latency {lat[-1]:.1f} s"
            + "".join(f"; {n}" for n in s.notes)
        )
    print()
    print("\n".join(details))
    shutil.rmtree(tmp, ignore_errors=True)  # (kept when the run raised: the processes' logs are there)
    sys.exit(0 if failures == 0 else 1)


if __name__ == "__main__":
    main()
