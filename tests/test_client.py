"""service/client.py and `python -m service submit` against the live service (`python -m service
serve` in a subprocess: embedded Redis, a real worker), with an API key and a one-job queue, so
the bad answers are real ones: 401, 415, and 429 until the queue has room."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import httpx
import pytest
from live_service import running_service
from test_api import PNG
from videos import astronaut_frames, write_video

from service.client import Client, ServiceError

KEY = "test-key-1"


@pytest.fixture(scope="module")
def service(tmp_path_factory, model_dir):
    storage = tmp_path_factory.mktemp("client-storage")
    env = {
        "RAMFER_STORAGE_DIR": str(storage),
        "RAMFER_MODEL_DIR": str(model_dir),
        "RAMFER_TORCH_THREADS": "1",
        "RAMFER_API_KEYS": json.dumps([KEY]),
        "RAMFER_MAX_QUEUED_JOBS": "1",
        "RAMFER_QUEUE_FULL_RETRY_AFTER_S": "1",
    }
    with running_service(env) as (url, _):
        yield url


def submit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "service", "submit", *args], capture_output=True, text=True, timeout=300
    )


def test_submit_prints_the_result(service, videos):
    done = submit(str(videos["astronaut_webm"]), "--url", service, "--api-key", KEY, "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["video"]["frames"] == 20 and result["expression"]
    assert {m["name"] for m in result["attention_maps"]} == {"peak", "peak_clip", "peak_evidence"}
    done = submit(str(videos["five_frames"]), "--url", service, "--api-key", KEY)
    assert done.returncode == 0, done.stderr
    assert "five_frames.mp4: " in done.stdout and "confidence" in done.stdout and "/attention/peak.png" in done.stdout


def test_submit_prints_a_block_per_person(service, people_videos):
    done = submit(str(people_videos["side"]), "--url", service, "--api-key", KEY)
    assert done.returncode == 0, done.stderr
    assert "2 people, the main one below" in done.stdout
    blocks = re.findall(r"^person (\d): (\w+) \(confidence", done.stdout, re.M)
    assert sorted(label for _, label in blocks) == ["happy", "neutral"] and sorted(i for i, _ in blocks) == ["1", "2"]
    assert done.stdout.count("/attention/person") == 8  # each person's three maps and their face


def test_client_follows_the_job_with_progress_and_fetches_the_images(service, videos):
    seen = []
    with Client(service, api_key=KEY, poll_s=0.1) as client:
        result = client.predict(videos["astronaut_mp4"], wait=0, on_progress=seen.append)
        assert result["video"]["frames"] == 40 and result["job_id"]
        assert seen and seen[-1]["stage"] == "done" and seen[-1]["percent"] == 100.0
        assert client.image(result["attention_maps"][0]["url"]).startswith(PNG)
        assert "happy" in client.model()["classes"]


def test_the_services_error_messages_reach_the_caller(service, tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 50)
    with Client(service) as no_key, pytest.raises(ServiceError) as refused:
        no_key.predict(text)
    assert refused.value.status == 401 and refused.value.code == "unauthorized" and "API key" in refused.value.message
    with Client(service, api_key=KEY) as client, pytest.raises(ServiceError) as refused:
        client.predict(text)
    assert refused.value.status == 415 and refused.value.code == "unsupported_format"
    done = submit(str(text), "--url", service, "--api-key", KEY)
    assert done.returncode == 2 and done.stderr.startswith("error (unsupported_format): Not a video container")
    done = submit(str(text), "--url", service, "--json")  # no key: the 401, as JSON
    assert done.returncode == 2 and json.loads(done.stderr.strip().splitlines()[-1])["error"]["code"] == "unauthorized"
    done = submit(str(text), "--url", "http://127.0.0.1:1", "--retries", "1")  # nothing listens there
    assert done.returncode == 2 and "cannot be reached" in done.stderr


def test_a_full_queue_is_asked_again_after_its_retry_after(service, tmp_path, videos):
    headers = {"Authorization": f"Bearer {KEY}"}
    busy = write_video(tmp_path / "busy.mp4", astronaut_frames(150, size=(320, 240)))

    def post(path):
        return httpx.post(
            f"{service}/predict",
            files={"file": (path.name, path.read_bytes(), "video/mp4")},
            headers=headers,
            timeout=30,
        )

    first = post(busy).json()["job_id"]  # the worker takes it ...
    deadline = time.monotonic() + 60
    while httpx.get(f"{service}/jobs/{first}", headers=headers).json()["status"] == "queued":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert post(busy).status_code == 202  # ... this one waits: the queue (of 1) is full
    retries = []
    with Client(
        service, api_key=KEY, retries=100, on_retry=lambda why, delay: retries.append((why.status_code, delay))
    ) as client:
        result = client.predict(videos["five_frames"], wait=0)
    assert result["video"]["frames"] == 5
    assert retries and {status for status, _ in retries} == {429}
    assert all(delay == 1.0 for _, delay in retries)  # the service's Retry-After, not the client's own backoff


def test_submit_csv_prints_the_timeline(service, videos):
    done = submit(str(videos["astronaut_webm"]), "--url", service, "--api-key", KEY, "--csv")
    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.splitlines()
    assert header.startswith("person,clip,start_s,end_s,face,label,p_") and len(rows) == 7  # 20 frames: 7 clips


def test_submit_sends_a_folder_as_a_batch_and_records_the_bad_file(service, videos, tmp_path):
    import csv
    import shutil

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(videos["astronaut_webm"], inbox / "face.webm")
    shutil.copy(videos["five_frames"], inbox / "short.mp4")
    (inbox / "notes.mp4").write_text("not a video\n" * 50)
    out = tmp_path / "out"
    done = submit(str(inbox), "--url", service, "--api-key", KEY, "--out", str(out))
    assert done.returncode == 1, done.stderr  # a video failed; the others were analysed
    assert "3 videos: 2 analysed, 0 done before, 1 failed" in done.stdout
    summary = list(csv.DictReader((out / "summary.csv").open()))
    assert [(row["video"], row["error_code"]) for row in summary] == [
        ("face.webm", ""),
        ("notes.mp4", "unsupported_format"),
        ("short.mp4", ""),
    ]
    result = json.loads((out / "face.webm" / "result.json").read_text())
    assert result["job_id"] and summary[0]["expression"] == result["expression"]
    assert (out / "face.webm" / "timeline.csv").read_text().count("\n") == 1 + 7
    done = submit(
        str(inbox), "--url", service, "--api-key", KEY, "--out", str(out)
    )  # again: only the bad file is tried
    assert "3 videos: 0 analysed, 2 done before, 1 failed" in done.stdout
