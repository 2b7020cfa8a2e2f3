"""`python -m service serve` started for real in a subprocess (embedded Redis and worker
processes), for the browser test and the benchmarks: the product as a user starts it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_service(
    env: dict[str, str], workers: int = 1, timeout: float = 120
) -> Iterator[tuple[str, subprocess.Popen]]:
    """(base URL, the serve process) once /readyz counts `workers` live workers with the model.
    RAMFER_REDIS_URL (and REDIS_URL) are dropped so the embedded Redis is used; stopping the process stops it all."""
    port = free_port()
    env = {k: v for k, v in {**os.environ, **env}.items() if k not in ("RAMFER_REDIS_URL", "REDIS_URL")}
    log = tempfile.TemporaryFile()  # noqa: SIM115  a file, not a pipe: a pipe nobody reads fills and blocks the server
    proc = subprocess.Popen(
        [sys.executable, "-m", "service", "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                r = httpx.get(f"{url}/readyz", timeout=2)
                if r.status_code == 200 and r.json().get("workers", 0) >= workers:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                log.seek(0)
                raise RuntimeError("the service did not become ready: " + log.read().decode(errors="replace")[-2000:])
            time.sleep(0.3)
        yield url, proc
    finally:
        proc.terminate()  # Ctrl-C's path: workers and Redis are stopped with it
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
