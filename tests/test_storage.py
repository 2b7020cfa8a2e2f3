"""The storage (service/storage.py): one interface, a local directory or an S3 bucket, checked
against a real S3 server (SeaweedFS, tests/s3server.py); then the API and a real worker using
the bucket, with nothing in the local storage folder."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import httpx
import pytest
from conftest import make_settings
from fastapi.testclient import TestClient
from test_api import PNG, assert_error, post

from service import jobs
from service.api import create_app
from service.storage import LocalStorage, S3Storage, StorageUnavailable, make_storage


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path, redis_url, model_dir):
    if request.param == "local":
        return LocalStorage(tmp_path / "storage")
    server = request.getfixturevalue("s3_server")
    # a bucket of its own: other tests' objects cannot show up in list()
    return make_storage(
        make_settings(
            redis_url, tmp_path / "unused", model_dir, **{**server.settings(), "s3_bucket": server.new_bucket()}
        )
    )


def test_one_interface_for_a_directory_and_a_bucket(storage, tmp_path):
    src = tmp_path / "in.bin"
    src.write_bytes(b"v" * 300_000)
    storage.ping()
    storage.put_file("uploads/a.video", src)
    storage.put_file("results/j1/peak.png", src)
    storage.put_file("results/j1/peak_clip.png", src)
    assert storage.exists("uploads/a.video") and not storage.exists("uploads/b.video")
    assert storage.get("results/j1/peak.png") == src.read_bytes()
    assert b"".join(storage.stream("results/j1/peak.png")) == src.read_bytes()
    with storage.local_copy("uploads/a.video") as copy:
        assert copy.read_bytes() == src.read_bytes()
    if isinstance(storage, S3Storage):
        assert not copy.exists() and not copy.parent.exists()  # the download is removed after use
    assert sorted(e.key for e in storage.list("results")) == ["results/j1/peak.png", "results/j1/peak_clip.png"]
    assert all(abs(e.modified - time.time()) < 120 for e in storage.list("uploads"))
    for missing in (lambda: storage.get("uploads/none"), lambda: storage.stream("uploads/none")):
        with pytest.raises(FileNotFoundError):
            missing()
    with pytest.raises(FileNotFoundError), storage.local_copy("uploads/none"):
        pass
    storage.delete_prefix("results/j1")
    storage.delete("uploads/a.video")
    storage.delete("uploads/a.video")  # deleting what is gone is not an error
    assert list(storage.list("results")) == [] and list(storage.list("uploads")) == []
    assert storage.url("results/j1/peak.png") is None  # presigned URLs only when asked for


def test_presigned_urls_fetch_the_object(s3_settings, tmp_path):
    storage = make_storage(s3_settings.model_copy(update={"s3_presigned_urls": True, "s3_url_ttl_s": 60}))
    src = tmp_path / "x.png"
    src.write_bytes(PNG + b"data")
    storage.put_file("results/presign/peak.png", src)
    url = storage.url("results/presign/peak.png")
    assert "Signature" in url or "X-Amz-Signature" in url
    assert httpx.get(url).content == src.read_bytes()
    assert httpx.get(url.replace("Signature=", "Signature=x")).status_code == 403  # the signature is checked
    storage.delete_prefix("results/presign")


def test_an_unreachable_bucket_is_storage_unavailable_quickly(s3_settings):
    dead = make_storage(s3_settings.model_copy(update={"s3_endpoint_url": "http://127.0.0.1:1"}))
    start = time.monotonic()
    with pytest.raises(StorageUnavailable):
        dead.ping()
    assert time.monotonic() - start < 10


def test_credentials_come_from_secret_files_and_are_never_shown(s3_server, tmp_path, redis_url, model_dir, caplog):
    from s3server import ACCESS_KEY, SECRET_KEY

    from service.settings import Settings

    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "ramfer_s3_access_key_id").write_text(
        ACCESS_KEY
    )  # files named like the variables (docs/configuration.md)
    (secrets / "ramfer_s3_secret_access_key").write_text(SECRET_KEY)
    settings = Settings(
        _secrets_dir=secrets,
        storage_backend="s3",
        s3_endpoint_url=s3_server.url,
        s3_bucket=s3_server.bucket,
        redis_url=redis_url,
        model_dir=model_dir,
    )
    assert settings.s3_secret_access_key.get_secret_value() == SECRET_KEY
    assert SECRET_KEY not in repr(settings) and SECRET_KEY not in str(settings.model_dump())
    caplog.set_level(logging.DEBUG, logger="service")
    make_storage(settings).ping()  # the keys work
    wrong = settings.model_copy(update={"s3_secret_access_key": settings.s3_secret_access_key.__class__("not-the-key")})
    with pytest.raises(StorageUnavailable) as refused:
        make_storage(wrong).ping()
    assert SECRET_KEY not in str(refused.value) and "not-the-key" not in str(refused.value)
    assert SECRET_KEY not in caplog.text


def burst(settings) -> None:
    """Work off the queue in this process (RQ burst mode) with these settings."""
    from service.worker import ModelWorker

    redis = jobs.connect(settings)
    ModelWorker([jobs.make_queue(redis, settings)], settings, connection=redis).work(
        burst=True, logging_level="WARNING"
    )


def test_api_and_worker_through_s3_nothing_on_local_disk(s3_settings, s3_server, videos):
    with TestClient(create_app(s3_settings)) as client:
        assert client.get("/readyz").json()["error"]["code"] == "no_workers"  # the storage answered: on to workers
        r = post(client, videos["astronaut_webm"])
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        assert s3_server.keys(f"uploads/{job_id}") == [f"uploads/{job_id}.video"]  # the upload is in the bucket
        burst(s3_settings)
        view = client.get(f"/jobs/{job_id}").json()
        assert view["status"] == "finished", view
        assert s3_server.keys(f"uploads/{job_id}") == [
            f"uploads/{job_id}.video"
        ]  # kept for the player, as long as its images
        whole = videos["astronaut_webm"].read_bytes()
        part = client.get(
            f"/jobs/{job_id}/video", headers={"Range": "bytes=10-99"}
        )  # streamed from the bucket in ranges
        assert (
            part.status_code == 206 and part.content == whole[10:100] and part.headers["content-type"] == "video/webm"
        )
        assert client.get(f"/jobs/{job_id}/video").content == whole
        names = [
            "peak",
            "peak_clip",
            "peak_evidence",
            "person1_face",
            "person1_peak",
            "person1_peak_clip",
            "person1_peak_evidence",
        ]  # the main person's maps twice
        assert s3_server.keys(f"results/{job_id}/") == [f"results/{job_id}/{n}.png" for n in names]
        for image in view["result"]["attention_maps"] + [view["result"]["people"][0]["thumbnail"]]:
            png = client.get(image["url"])
            assert png.status_code == 200 and png.headers["content-type"] == "image/png" and png.content.startswith(PNG)
        assert_error(client.get(f"/jobs/{job_id}/attention/nope.png"), 404, "unknown_image")
        assert "ramfer_storage_up 1.0" in client.get("/metrics").text
    assert not s3_settings.storage_dir.exists()  # nothing went through a local folder

    # presigned: the API answers with a redirect to the bucket, and the bucket serves the PNG
    presigned = s3_settings.model_copy(update={"s3_presigned_urls": True})
    with TestClient(create_app(presigned)) as client:
        r = client.get(f"/jobs/{job_id}/attention/peak.png", follow_redirects=False)
        assert r.status_code == 307 and r.headers["location"].startswith(s3_server.url)
        assert httpx.get(r.headers["location"]).content.startswith(PNG)
        assert_error(client.get(f"/jobs/{job_id}/attention/nope.png", follow_redirects=False), 404, "unknown_image")


def test_expired_jobs_lose_their_objects(s3_settings, s3_server, tmp_path):
    # a bucket of its own: the session's bucket holds other tests' objects, which are older
    # than a minute when the suite is slow and would be swept here too
    bucket = s3_server.new_bucket()
    s3_settings = s3_settings.model_copy(update={"s3_bucket": bucket})
    storage = make_storage(s3_settings)
    redis = jobs.connect(s3_settings)
    live, gone = jobs.new_job_id(), jobs.new_job_id()
    redis.set(f"rq:job:{live}", "x", ex=60)  # a job that still exists
    src = tmp_path / "f"
    src.write_bytes(b"x")
    for job_id in (live, gone):
        storage.put_file(f"uploads/{job_id}.video", src)
        storage.put_file(f"results/{job_id}/peak.png", src)
    assert jobs.delete_expired_files(redis, storage, min_age_s=60) == 0  # too young: may be being created
    assert jobs.delete_expired_files(redis, storage, min_age_s=0) == 2
    assert s3_server.keys(f"uploads/{gone}", bucket) == [] and s3_server.keys(f"results/{gone}", bucket) == []
    assert s3_server.keys(f"uploads/{live}", bucket) == [f"uploads/{live}.video"]
    assert s3_server.keys(f"results/{live}", bucket) != []
    storage.delete(f"uploads/{live}.video")
    storage.delete_prefix(f"results/{live}")


def test_storage_down_is_503_for_uploads_and_readiness(s3_settings, videos, tmp_path):
    dead = s3_settings.model_copy(update={"s3_endpoint_url": "http://127.0.0.1:1"})
    with TestClient(create_app(dead)) as client:
        assert_error(post(client, videos["five_frames"]), 503, "storage_unavailable")
        assert_error(client.get("/readyz"), 503, "storage_unavailable")
        assert client.get("/healthz").status_code == 200
        assert "ramfer_storage_up 0.0" in client.get("/metrics").text
    assert not Path(dead.storage_dir).exists()


def test_a_job_whose_upload_is_gone_fails_saying_so(s3_settings, s3_server, videos):
    with TestClient(create_app(s3_settings)) as client:
        job_id = post(client, videos["five_frames"]).json()["job_id"]
        s3_server.client().delete_object(Bucket=s3_server.bucket, Key=f"uploads/{job_id}.video")
        burst(s3_settings)
        view = client.get(f"/jobs/{job_id}").json()
    assert view["status"] == "failed" and view["error"]["code"] == "upload_missing", view
    assert "submit it again" in view["error"]["message"]
