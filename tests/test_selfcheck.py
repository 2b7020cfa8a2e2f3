"""Ready means able: a worker analyses the shipped check clip (decode -> detect -> crop -> model)
before it registers, and one that cannot says why and never registers, so /readyz stays 503."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import settings_env
from test_api import assert_error

from service import jobs
from service.selfcheck import CHECK_VIDEO, self_check
from service.settings import Settings


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


@pytest.mark.parametrize(
    "case,expect",
    [
        ("unreadable_check_video", "unsupported_format"),
        ("missing_check_video", "No such file"),
        ("no_pyav", "'av' is not installed"),
        ("broken_model", "sha256"),
        ("empty_model_dir", "cannot load the model: RAMFER_MODEL_DIR="),
    ],
)
def test_a_worker_that_cannot_analyse_says_why_and_never_registers(client, settings, tmp_path, case, expect):
    env = settings_env(settings)
    if case == "unreadable_check_video":
        (tmp_path / "check.mp4").write_text("not a video\n" * 20)
        env["RAMFER_CHECK_VIDEO"] = str(tmp_path / "check.mp4")
    elif case == "missing_check_video":
        env["RAMFER_CHECK_VIDEO"] = str(tmp_path / "nowhere.mp4")
    elif case == "no_pyav":
        env.update(no_pyav(tmp_path))
    elif case == "empty_model_dir":
        (tmp_path / "empty").mkdir()
        env["RAMFER_MODEL_DIR"] = str(tmp_path / "empty")
    else:  # the real checkpoint with its weights damaged
        import shutil

        broken = shutil.copytree(settings.model_dir, tmp_path / "model")
        weights = bytearray((broken / "model.safetensors").read_bytes())
        weights[-100:] = bytes(100)
        (broken / "model.safetensors").write_bytes(bytes(weights))
        env["RAMFER_MODEL_DIR"] = str(broken)
    proc = subprocess.run(
        [sys.executable, "-m", "service", "worker"], env=env, capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "worker self-check failed, not registering" in proc.stderr and expect in proc.stderr, proc.stderr[-2000:]
    if case in ("broken_model", "empty_model_dir"):  # the model: one line that names the setting, no traceback
        line = next(x for x in proc.stderr.splitlines() if "self-check failed" in x)
        assert (
            f"cannot load the model: RAMFER_MODEL_DIR={env['RAMFER_MODEL_DIR']}: " in line
            and "Traceback" not in proc.stderr
        ), proc.stderr[-2000:]
        assert line.endswith("config.json not found" if case == "empty_model_dir" else "")
    assert jobs.live_workers(jobs.make_queue(jobs.connect(settings), settings)) == []
    assert_error(client.get("/readyz"), 503, "no_workers")


def test_serve_stops_when_its_workers_cannot_analyse(tmp_path):
    """`serve` whose only worker fails its self-check stops with exit status 3 and says why, instead
    of running on with /readyz at 503 that nothing will ever turn to 200."""
    from live_service import free_port

    (tmp_path / "check.mp4").write_text("not a video\n" * 20)
    env = {k: v for k, v in os.environ.items() if k not in ("RAMFER_REDIS_URL", "REDIS_URL")}
    env.update(RAMFER_CHECK_VIDEO=str(tmp_path / "check.mp4"), TMPDIR=str(tmp_path))
    proc = subprocess.run(
        [sys.executable, "-m", "service", "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "worker self-check failed, not registering" in proc.stderr
    assert "every worker exited (exit status 3" in proc.stderr, proc.stderr[-2000:]
    assert not list(tmp_path.glob("ramfer-redis-*"))  # the embedded Redis and its folder went with it


def one_line_error(proc) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0 and "Traceback" not in proc.stderr and len(lines) == 1, (
        proc.returncode,
        proc.stderr[-2000:],
    )
    return lines[0]


def test_predict_without_a_model_says_so_in_one_line(tmp_path):
    """A RAMFER_MODEL_DIR with no checkpoint in it (or --model, or the detector's weights gone): one line
    that names the setting and what was looked for, a non-zero exit, no traceback."""
    from service.selfcheck import CHECK_VIDEO

    (tmp_path / "empty").mkdir()
    env = {**os.environ, "RAMFER_MODEL_DIR": str(tmp_path / "empty")}
    proc = subprocess.run(
        [sys.executable, "-m", "service", "predict", str(CHECK_VIDEO)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (
        one_line_error(proc)
        == f"ramfer: cannot load the model: RAMFER_MODEL_DIR={tmp_path / 'empty'}: config.json not found"
    )
    env.pop("RAMFER_MODEL_DIR")
    proc = subprocess.run(
        [sys.executable, "-m", "service", "predict", "--model", str(tmp_path / "nowhere"), str(CHECK_VIDEO)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert one_line_error(proc) == f"ramfer: cannot load the model: --model {tmp_path / 'nowhere'}: no such folder"


def test_serve_without_a_model_says_so_before_it_starts_anything(tmp_path):
    from live_service import free_port

    env = {k: v for k, v in os.environ.items() if k not in ("RAMFER_REDIS_URL", "REDIS_URL")}
    env.update(RAMFER_MODEL_DIR=str(tmp_path / "nowhere"), TMPDIR=str(tmp_path))
    proc = subprocess.run(
        [sys.executable, "-m", "service", "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (
        one_line_error(proc)
        == f"ramfer: cannot load the model: RAMFER_MODEL_DIR={tmp_path / 'nowhere'}: no such folder"
    )
    assert not list(tmp_path.glob("ramfer-redis-*"))  # no Redis, no workers were started


def test_a_missing_bundled_file_is_named(settings, tmp_path, monkeypatch):
    """The package's own files gone (a broken install): the message says which file and what to do;
    the detector's weights are looked for where the package keeps them."""
    from service import selfcheck
    from training import bundled
    from training.detector import BlazeFace, DetectorError

    unset = Settings.model_construct(
        _fields_set=set(), model_dir=tmp_path / "gone"
    )  # as if RAMFER_MODEL_DIR were not set
    with pytest.raises(
        selfcheck.ModelUnavailable,
        match=r"^cannot load the model: RAMFER_MODEL_DIR unset, the bundled checkpoint .*gone: "
        r"no such folder \(a broken install: reinstall ramfer, or set RAMFER_MODEL_DIR to a checkpoint folder\)$",
    ):
        selfcheck.check_model_files(unset)
    monkeypatch.setattr(bundled, "DETECTOR_WEIGHTS", tmp_path / "blazeface.safetensors")
    with pytest.raises(
        selfcheck.ModelUnavailable,
        match=r"^cannot load the face detector: .*blazeface.safetensors: not found \(it ships",
    ):
        selfcheck.check_model_files(settings)
    (tmp_path / "blazeface.safetensors").write_bytes(b"not safetensors" * 10)
    with pytest.raises(DetectorError, match=r"blazeface\.safetensors: cannot be loaded"):
        BlazeFace(weights=tmp_path / "blazeface.safetensors")


def test_model_answers_503_without_a_server_path(redis_url, tmp_path):
    from conftest import make_settings
    from fastapi.testclient import TestClient

    from service.api import create_app

    (tmp_path / "empty").mkdir()
    with TestClient(create_app(make_settings(redis_url, tmp_path / "storage", tmp_path / "empty"))) as c:
        response = c.get("/model")
        assert_error(response, 503, "model_unavailable")
        assert str(tmp_path) not in response.text and "config.json" not in response.text
