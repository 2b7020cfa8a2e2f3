"""Ready means able: a worker analyses the shipped check clip (decode -> detect -> crop -> model)
before it registers, and one that cannot says why and never registers, so /readyz stays 503."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import settings_env
from service import jobs
from service.selfcheck import CHECK_VIDEO, self_check
from test_api import assert_error


def test_the_check_clip_is_small_and_goes_through_the_whole_pipeline(settings, model_dir):
    from service.pipeline import Predictor

    assert CHECK_VIDEO.is_file() and CHECK_VIDEO.stat().st_size < 20_000  # shipped in the package: a few KB
    predictor = Predictor(model_dir)
    result = self_check(predictor, settings)
    assert result["faces"]["frames_with_face"] == result["faces"]["frames"] == 12  # the face is found in every frame
    assert result["expression"] in predictor.classes
    assert {"decode", "detect", "crop", "infer", "render"} <= set(result["timings_ms"])


def no_pyav(tmp_path):
    """A real `av` package that fails to import, first on the path: the original bug's install."""
    (tmp_path / "av").mkdir()
    (tmp_path / "av" / "__init__.py").write_text('raise ModuleNotFoundError("No module named \'av\'", name="av")\n')
    return {"PYTHONPATH": str(tmp_path)}


@pytest.mark.parametrize("case,expect", [
    ("unreadable_check_video", "unsupported_format"),
    ("missing_check_video", "No such file"),
    ("no_pyav", "'av' is not installed"),
    ("broken_model", "sha256"),
])
def test_a_worker_that_cannot_analyse_says_why_and_never_registers(client, settings, tmp_path, case, expect):
    env = settings_env(settings)
    if case == "unreadable_check_video":
        (tmp_path / "check.mp4").write_text("not a video\n" * 20)
        env["CHECK_VIDEO"] = str(tmp_path / "check.mp4")
    elif case == "missing_check_video":
        env["CHECK_VIDEO"] = str(tmp_path / "nowhere.mp4")
    elif case == "no_pyav":
        env.update(no_pyav(tmp_path))
    else:  # the real checkpoint with its weights damaged
        import shutil

        broken = shutil.copytree(settings.model_dir, tmp_path / "model")
        weights = bytearray((broken / "model.safetensors").read_bytes())
        weights[-100:] = bytes(100)
        (broken / "model.safetensors").write_bytes(bytes(weights))
        env["MODEL_DIR"] = str(broken)
    proc = subprocess.run([sys.executable, "-m", "service", "worker"], env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "worker self-check failed, not registering" in proc.stderr and expect in proc.stderr, proc.stderr[-2000:]
    assert jobs.live_workers(jobs.make_queue(jobs.connect(settings), settings)) == []
    assert_error(client.get("/readyz"), 503, "no_workers")


def test_serve_stops_when_its_workers_cannot_analyse(tmp_path):
    """`serve` whose only worker fails its self-check stops with exit status 3 and says why, instead
    of running on with /readyz at 503 that nothing will ever turn to 200."""
    from live_service import free_port

    (tmp_path / "check.mp4").write_text("not a video\n" * 20)
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(CHECK_VIDEO=str(tmp_path / "check.mp4"), TMPDIR=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "service", "serve", "--port", str(free_port())],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "worker self-check failed, not registering" in proc.stderr
    assert "every worker exited (exit status 3" in proc.stderr, proc.stderr[-2000:]
    assert not list(tmp_path.glob("ramfer-redis-*"))  # the embedded Redis and its folder went with it
