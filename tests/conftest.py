"""Shared fixtures: a real Redis server, real worker processes, real video files, the real checkpoint."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/videos.py
# The suite's workers and predictors run PyTorch, as a plain install does (ONNX Runtime is the onnx extra, which the
# dev extra brings in): a worker that had to export the network first would take a minute longer to start than
# the tests wait. tests/test_runtime.py asks for each runtime by name.
os.environ.setdefault("RAMFER_INFERENCE_RUNTIME", "torch")

from service.embedded import EmbeddedRedis
from service.settings import DEFAULT_MODEL_DIR, Settings, env_name

LONDON = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "london-set"
SESSION_TMP: Path | None = None
CONFIG = None  # pytest's, for say()


def say(line: str) -> None:
    """A progress line on the terminal now, past pytest's output capture (long tests say what
    they are doing instead of sitting silent for minutes)."""
    if CONFIG is None:
        return
    capture = CONFIG.pluginmanager.getplugin("capturemanager")
    terminal = CONFIG.pluginmanager.getplugin("terminalreporter")
    if terminal is None:
        return
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        terminal.write_line(f"    | {line}")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    """Everything the run writes to a temp dir goes under one private folder, removed at the end:
    pytest's tmp_path folders (no pytest-of-<user> left behind), and, through TMPDIR, whatever
    this process and the services it starts make (embedded Redis, predict's folders, benchmarks).
    RAMFER_KEEP_TMP=1 keeps it (its path is printed) to look at after a failure."""
    global SESSION_TMP, CONFIG
    CONFIG = config
    if hasattr(config, "workerinput"):  # pytest-xdist worker: the controller's folder is used
        return
    SESSION_TMP = Path(tempfile.mkdtemp(prefix="ramfer-tests-"))
    os.environ["TMPDIR"] = str(SESSION_TMP)
    tempfile.tempdir = str(SESSION_TMP)
    if config.option.basetemp is None:
        config.option.basetemp = str(SESSION_TMP / "pytest")


def pytest_unconfigure(config):
    if SESSION_TMP is None:
        return
    if os.environ.get("RAMFER_KEEP_TMP") == "1":
        print(f"\ntemporary files kept in {SESSION_TMP}")
    else:
        shutil.rmtree(SESSION_TMP, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_url():
    server = EmbeddedRedis()
    url = server.start()
    yield url
    server.cleanup()


@pytest.fixture(scope="session")
def model_dir() -> Path:
    assert (DEFAULT_MODEL_DIR / "model.safetensors").is_file(), (
        "the default checkpoint training/models/default is missing"
    )
    return DEFAULT_MODEL_DIR


@pytest.fixture(scope="module")
def detector():
    """The face detector (BlazeFace through training.faces.FaceDetector), one per test module."""
    from training.faces import FaceDetector

    return FaceDetector()


def make_settings(redis_url, storage: Path, model_dir: Path, **overrides) -> Settings:
    return Settings(
        redis_url=redis_url,
        storage_dir=storage,
        model_dir=model_dir,
        queue_name=f"test-{uuid.uuid4().hex[:8]}",
        heartbeat_s=1,
        heartbeat_grace_s=2,
        torch_threads=1,
        **overrides,
    )


@pytest.fixture
def settings(redis_url, tmp_path, model_dir) -> Settings:
    return make_settings(redis_url, tmp_path / "storage", model_dir)


@pytest.fixture
def client(settings):
    from fastapi.testclient import TestClient

    from service.api import create_app

    with TestClient(create_app(settings)) as c:
        yield c


def settings_env(settings: Settings) -> dict:
    from pydantic import SecretStr

    env = dict(os.environ)
    names = [
        "redis_url",
        "storage_dir",
        "model_dir",
        "queue_name",
        "heartbeat_s",
        "heartbeat_grace_s",
        "torch_threads",
        "storage_backend",
    ]
    if settings.storage_backend == "s3":
        names += ["s3_endpoint_url", "s3_bucket", "s3_access_key_id", "s3_secret_access_key", "s3_timeout_s"]
    for name in names:
        value = getattr(settings, name)
        env[env_name(name)] = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
    return env


def start_worker(settings: Settings) -> subprocess.Popen:
    """A real `python -m service worker` process; returns once it has registered (model loaded)."""
    from service import jobs

    proc = subprocess.Popen(
        [sys.executable, "-m", "service", "worker"],
        env=settings_env(settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    queue = jobs.make_queue(jobs.connect(settings), settings)
    deadline = time.monotonic() + 90
    while not jobs.live_workers(queue):
        if proc.poll() is not None:
            raise RuntimeError("worker exited: " + proc.stderr.read().decode(errors="replace")[-2000:])
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("worker did not register within 90 s")
        time.sleep(0.1)
    return proc


@pytest.fixture
def worker(settings):
    proc = start_worker(settings)
    yield proc
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def run_burst_worker(settings):
    """Work off the queue in this process (RQ burst mode), the model loaded once per session."""
    from service.jobs import connect, make_queue
    from service.worker import ModelWorker

    def run():
        redis = connect(settings)
        ModelWorker([make_queue(redis, settings)], settings, connection=redis).work(burst=True, logging_level="WARNING")

    return run


@pytest.fixture(scope="session")
def videos(tmp_path_factory) -> dict[str, Path]:
    """Real video files of every kind the tests need, made once."""
    from videos import astronaut_frames, blank_frames, write_video

    d = tmp_path_factory.mktemp("videos")
    astro = astronaut_frames(40)
    v = {
        "astronaut_mp4": write_video(d / "astronaut.mp4", astro),
        "astronaut_webm": write_video(d / "astronaut.webm", astro[:20]),
        "astronaut_mkv": write_video(d / "astronaut.mkv", astro[:20]),
        "astronaut_mov": write_video(d / "astronaut.mov", astro[:20]),
        "astronaut_avi": write_video(d / "astronaut.avi", astro[:20]),
        "astronaut_mpg": write_video(d / "astronaut.mpg", astro[:20]),  # MPEG-PS, MPEG-2 video
        "astronaut_mpeg": write_video(d / "astronaut.mpeg", astro[:20]),  # MPEG-PS, MPEG-1 video
        "astronaut_ogg": write_video(d / "astronaut.ogg", astro[:20]),  # Ogg, VP8
        "one_frame": write_video(d / "one_frame.mp4", astro[:1]),
        "five_frames": write_video(d / "five_frames.mp4", astro[:5]),
        "no_face": write_video(d / "no_face.mp4", blank_frames(20)),
        "face_gap_face": write_video(
            d / "face_gap_face.mp4", astro[:16] + blank_frames(16, size=(640, 360)) + astro[16:32]
        ),
        "long_astronaut": write_video(d / "long_astronaut.mp4", astronaut_frames(600, zoom=(0.95, 1.05))),
    }
    return v


SMILER, CALM = "smiling/091_08", "neutral/034_03"  # held-out London people (fold 0): a real smile, a calm face


@pytest.fixture(scope="session")
def people_videos(tmp_path_factory) -> dict[str, Path]:
    """Real videos of several real faces (London set photos, CC BY 4.0): the smiler on the left and
    the calm person on the right (`side`); the calm one leaving to the right from frame 20 (`leave`);
    the two crossing, the smiler larger and in front (`cross`); a third face for 3 frames only, from
    frame 32, where the detector looks for new people (a second after it last did: `brief`)."""
    if not (LONDON / "neutral").is_dir():
        pytest.skip(f"the London set is not at {LONDON}")
    from videos import london_tile, people_frames, write_video

    d = tmp_path_factory.mktemp("people")
    smiler, calm = london_tile(SMILER, 170), london_tile(CALM, 170)
    return {
        "side": write_video(
            d / "side.mp4", people_frames(48, [(smiler, lambda i: (60 + i, 100)), (calm, lambda i: (400 - i, 90))])
        ),
        "leave": write_video(
            d / "leave.mp4",
            people_frames(48, [(smiler, lambda i: (60, 100)), (calm, lambda i: (400 + max(0, 12 * (i - 20)), 90))]),
        ),
        "cross": write_video(
            d / "cross.mp4",
            people_frames(
                60,
                [
                    (london_tile(CALM, 130), lambda i: (500 - 8 * i, 110)),
                    (london_tile(SMILER, 180), lambda i: (-20 + 8 * i, 90)),
                ],
            ),
        ),
        "brief": write_video(
            d / "brief.mp4",
            people_frames(
                48,
                [
                    (smiler, lambda i: (30, 100)),
                    (london_tile("neutral/001_03", 150), lambda i: (420, 60) if 32 <= i < 35 else None),
                ],
            ),
        ),
    }


@pytest.fixture(scope="session")
def s3_server():
    """A real S3 server (SeaweedFS) for the session, with the bucket made; tests that stop it
    start it again before they end."""
    from s3server import SeaweedS3

    server = SeaweedS3()
    server.start()
    yield server
    server.cleanup()


@pytest.fixture
def s3_settings(redis_url, tmp_path, model_dir, s3_server) -> Settings:
    """Settings for the S3 storage; storage_dir is set to a folder that must stay empty."""
    return make_settings(redis_url, tmp_path / "unused-storage", model_dir, **s3_server.settings())
