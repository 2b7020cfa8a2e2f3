"""The API and N `python -m service worker` processes started for real as if on separate machines:
each process has its own RAMFER_STORAGE_DIR and TMPDIR (what another machine's disk would be) and they
share only a Redis over TCP and an S3 bucket. For tests/test_distributed.py and
benchmarks/load_test.py (the "no-shared-disk" setup)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from live_service import free_port


def machine(root: Path, name: str) -> dict[str, str]:
    """A process's private folders: what another machine's disk would be."""
    folders = {"RAMFER_STORAGE_DIR": root / name / "storage", "TMPDIR": root / name / "tmp"}
    folders["TMPDIR"].mkdir(parents=True)
    return {k: str(v) for k, v in folders.items()}


def start(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    with open(log, "wb") as f:
        return subprocess.Popen([sys.executable, "-m", "service", *args], env=env, stdout=f, stderr=subprocess.STDOUT)


def wait_for(predicate, timeout: float, what: str, procs=()):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        for p in procs:
            assert p.poll() is None, f"{what}: process {p.args} exited with {p.returncode}"
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.2)


def get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=5)
    except httpx.HTTPError:
        return None


@dataclass
class Cluster:
    url: str
    api: subprocess.Popen
    workers: list[subprocess.Popen]
    envs: dict[str, dict[str, str]]  # "api", "worker1", ...: each process's environment

    @property
    def procs(self) -> list[subprocess.Popen]:
        return [self.api, *self.workers]


@contextmanager
def running_cluster(
    root: Path,
    redis_url: str,
    storage_env: dict[str, str],
    workers: int = 2,
    env: dict[str, str] | None = None,
    timeout: float = 240,
) -> Iterator[Cluster]:
    """The API (`serve` with RAMFER_REDIS_URL: API only) and `workers` worker processes, once /readyz
    counts them all. `storage_env`: the S3 settings (SeaweedS3.env()); `env`: more settings for
    every process. Logs go to root/<name>.log and are printed if the block raises."""
    common = {k: v for k, v in os.environ.items() if k not in ("RAMFER_STORAGE_DIR", "STORAGE_DIR", "TMPDIR")}
    common.update(storage_env, RAMFER_REDIS_URL=redis_url, RAMFER_QUEUE_NAME=f"dist-{uuid.uuid4().hex[:8]}")
    common.update(env or {})
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    names = ["api"] + [f"worker{i + 1}" for i in range(workers)]
    envs = {name: {**common, **machine(root, name)} for name in names}
    api = start(["serve", "--port", str(port)], envs["api"], root / "api.log")
    cluster = Cluster(url, api, [start(["worker"], envs[w], root / f"{w}.log") for w in names[1:]], envs)
    try:
        wait_for(
            lambda: (r := get(f"{url}/readyz")) is not None and r.status_code == 200 and r.json()["workers"] == workers,
            timeout,
            f"API and {workers} workers ready",
            cluster.procs,
        )
        yield cluster
    except BaseException:
        for name in names:  # what the processes said, for the failure report
            log = root / f"{name}.log"
            print(f"--- {log.name}\n" + log.read_text(errors="replace")[-4000:])
        raise
    finally:
        for p in cluster.procs:
            p.terminate()
        for p in cluster.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
