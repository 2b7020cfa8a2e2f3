"""The RQ worker (service/worker.py): a worker killed mid-job fails its job (its heartbeats stop),
and a job's upload is deleted when it ends unless the video is kept for the page's player."""

from __future__ import annotations

import os
import signal
import time

from test_api import assert_error, post, wait_for


def test_videos_are_not_kept_when_keep_videos_is_off(redis_url, tmp_path, model_dir, videos):
    from conftest import make_settings
    from fastapi.testclient import TestClient

    from service.api import create_app
    from service.jobs import connect, make_queue
    from service.worker import ModelWorker

    settings = make_settings(redis_url, tmp_path / "storage", model_dir, keep_videos=False)
    with TestClient(create_app(settings)) as client:
        job = post(client, videos["astronaut_webm"], wait=0).json()["job_id"]
        redis = connect(settings)
        ModelWorker([make_queue(redis, settings)], settings, connection=redis).work(burst=True, logging_level="WARNING")
        assert client.get(f"/jobs/{job}").json()["status"] == "finished"
        assert not (settings.uploads_dir / f"{job}.video").exists()
        assert_error(client.get(f"/jobs/{job}/video"), 404, "unknown_video")


def test_worker_killed_mid_job_fails_the_job_with_a_message(client, settings, videos):
    from conftest import start_worker

    proc = start_worker(settings)
    try:
        job_id = post(client, videos["long_astronaut"]).json()["job_id"]
        wait_for(client, job_id, statuses=("started",), timeout=30)
        time.sleep(0.5)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        view = wait_for(client, job_id, timeout=settings.heartbeat_s + settings.heartbeat_grace_s + 15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert view["status"] == "failed"
    assert view["error"]["code"] == "worker_lost" and "killed" in view["error"]["message"]
