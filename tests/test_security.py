"""Who may call the service, how much it takes, and what it survives (docs/security.md).
Each test fails if the protection it names is removed."""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import pytest
from conftest import make_settings
from fastapi.testclient import TestClient
from test_api import assert_error, post

from service import jobs
from service.api import create_app
from service.storage import LocalStorage

KEY = "s3cret-key-for-tests"
EXCEPTION_GROUPS = (BaseExceptionGroup,) if sys.version_info >= (3, 11) else ()  # noqa: F821 (3.11+)


@pytest.fixture
def keyed(redis_url, tmp_path, model_dir):
    settings = make_settings(redis_url, tmp_path / "s", model_dir, api_keys=["other-key", KEY])
    with TestClient(create_app(settings)) as c:
        yield c


def test_api_keys_guard_every_route_but_the_probes_the_page_and_the_docs(keyed, videos):
    for path in ("/model", "/metrics", "/jobs/" + "0" * 32, "/jobs/" + "0" * 32 + "/attention/peak.png"):
        r = keyed.get(path)
        assert_error(r, 401, "unauthorized")
        assert r.headers["www-authenticate"] == "Bearer"
    assert_error(post(keyed, videos["five_frames"]), 401, "unauthorized")
    assert_error(keyed.get("/model", headers={"Authorization": "Bearer wrong"}), 401, "unauthorized")
    assert_error(keyed.get("/model", headers={"Authorization": f"Basic {KEY}"}), 401, "unauthorized")
    assert keyed.get("/model", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    assert keyed.get("/healthz").status_code == 200
    assert keyed.get("/").status_code == 200
    assert keyed.get("/readyz").status_code in (200, 503)  # open: 503 here only for want of a worker
    # the API's description and its pages open in a browser, which cannot send the key; no data in them
    for path in (
        "/docs",
        "/redoc",
        "/openapi.json",
        "/docs/static/swagger-ui-bundle.js",
        "/docs/static/swagger-ui.css",
    ):
        assert keyed.get(path).status_code == 200, path
    assert_error(keyed.get("/docs/staticky"), 401, "unauthorized")  # the open prefix is the folder, nothing beside it
    spec = keyed.get("/openapi.json", headers={"Authorization": f"Bearer {KEY}"}).json()
    assert spec["components"]["securitySchemes"]["apiKey"] == {"type": "http", "scheme": "bearer"}
    assert spec["paths"]["/predict"]["post"]["security"] == [{"apiKey": []}]


def test_keys_are_compared_in_constant_time(monkeypatch):
    import hmac

    from service import guards

    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(guards.hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))
    assert guards.key_is_valid("Bearer k1", ["k1", "k2", "k3"])
    assert len(calls) == 3  # no early exit on the match: the time does not tell which key matched


def test_job_ids_are_unguessable():
    ids = {jobs.new_job_id() for _ in range(200)}
    assert len(ids) == 200 and all(jobs.JOB_ID.match(i) for i in ids)  # 128 random bits each


def test_cors_is_off_unless_configured(redis_url, tmp_path, model_dir):
    preflight = {"Origin": "https://example.org", "Access-Control-Request-Method": "POST"}
    with TestClient(create_app(make_settings(redis_url, tmp_path / "a", model_dir))) as c:
        assert "access-control-allow-origin" not in c.options("/predict", headers=preflight).headers
        assert "access-control-allow-origin" not in c.get("/healthz", headers={"Origin": "https://example.org"}).headers
    with TestClient(
        create_app(make_settings(redis_url, tmp_path / "b", model_dir, cors_origins=["https://example.org"]))
    ) as c:
        assert c.options("/predict", headers=preflight).headers["access-control-allow-origin"] == "https://example.org"
        assert (
            "access-control-allow-origin" not in c.get("/healthz", headers={"Origin": "https://evil.example"}).headers
        )


def test_a_full_queue_answers_429_before_reading_the_upload(redis_url, tmp_path, model_dir, videos):
    settings = make_settings(redis_url, tmp_path / "s", model_dir, max_queued_jobs=1)
    with TestClient(create_app(settings)) as c:
        assert post(c, videos["five_frames"]).status_code == 202
        r = post(c, videos["five_frames"])
        assert_error(r, 429, "queue_full")
        assert int(r.headers["retry-after"]) > 0
    assert len(list(settings.uploads_dir.glob("*"))) == 1  # only the accepted one is on disk


def test_per_client_rate_limit(redis_url, tmp_path, model_dir, videos):
    settings = make_settings(redis_url, tmp_path / "s", model_dir, rate_limit_per_minute=2)
    with TestClient(create_app(settings)) as c:
        codes = [post(c, videos["five_frames"]).status_code for _ in range(3)]
        if int(time.time()) % 60 == 0:  # the minute turned over mid-test: the count restarted
            pytest.skip("minute boundary")
        assert codes[:2] == [202, 202]
        r = post(c, videos["five_frames"])
        assert_error(r, 429, "rate_limited")
        assert 0 < int(r.headers["retry-after"]) <= 60


def test_a_long_video_is_refused_from_its_header_without_decoding(redis_url, tmp_path, model_dir):
    """12 frames at 1 fps claim 12 s: over a 5 s cap, refused from the container's header."""
    from videos import write_video

    settings = make_settings(redis_url, tmp_path / "s", model_dir, max_duration_s=5)
    long_video = write_video(tmp_path / "long.mp4", [np.full((120, 160), 90, np.uint8)] * 12, fps=1.0)
    with TestClient(create_app(settings)) as c:
        assert_error(post(c, long_video), 413, "video_too_long")
    assert list(settings.uploads_dir.glob("*")) == []  # nothing kept, nothing queued


def test_uploaded_file_names_never_reach_a_path(client, settings, videos, tmp_path):
    r = post(client, videos["five_frames"], name="../../../escaped.mp4")
    assert r.status_code == 202
    job_id = r.json()["job_id"]
    assert [p.name for p in settings.uploads_dir.iterdir()] == [jobs.upload_path(settings, job_id).name]
    assert not list(tmp_path.rglob("escaped*")) and not list(settings.storage_dir.parent.rglob("escaped*"))


def test_redis_restart_503_during_the_outage_then_recovers_with_the_queued_job(tmp_path, model_dir, videos):
    from service.embedded import EmbeddedRedis
    from service.worker import ModelWorker

    server = EmbeddedRedis()
    settings = make_settings(server.start(), tmp_path / "s", model_dir)
    try:
        with TestClient(create_app(settings)) as c:
            job_id = post(c, videos["five_frames"]).json()["job_id"]
            time.sleep(1.2)  # the append-only file is synced every second
            server.stop()
            assert_error(c.get(f"/jobs/{job_id}"), 503, "queue_unavailable")
            assert_error(post(c, videos["five_frames"]), 503, "queue_unavailable")
            assert c.get("/healthz").status_code == 200
            server.start()
            assert c.get(f"/jobs/{job_id}").json()["status"] == "queued"  # recovered by itself, job kept
            redis = jobs.connect(settings)
            ModelWorker([jobs.make_queue(redis, settings)], settings, connection=redis).work(
                burst=True, logging_level="WARNING"
            )
            assert c.get(f"/jobs/{job_id}").json()["status"] == "finished"
    finally:
        server.cleanup()


def test_files_of_ended_and_expired_jobs_are_deleted(client, settings, run_burst_worker, videos):
    job_id = post(client, videos["five_frames"]).json()["job_id"]
    assert jobs.upload_path(settings, job_id).exists()
    run_burst_worker()
    assert jobs.upload_path(settings, job_id).exists()  # finished: kept for the page's player, as long as its images
    assert (settings.results_dir / job_id / "peak.png").exists()
    # an expired job: its Redis keys are gone, its files are old
    gone = jobs.new_job_id()
    (settings.results_dir / gone).mkdir(parents=True)
    (settings.results_dir / gone / "peak.png").write_bytes(b"x")
    jobs.upload_path(settings, gone).write_bytes(b"x")
    old = time.time() - 3600
    for p in (
        settings.results_dir / gone / "peak.png",
        jobs.upload_path(settings, gone),
        *(settings.results_dir / job_id).iterdir(),
    ):
        os.utime(p, (old, old))
    redis = jobs.connect(settings)
    assert jobs.delete_expired_files(redis, LocalStorage(settings.storage_dir)) == 2
    assert not (settings.results_dir / gone).exists() and not jobs.upload_path(settings, gone).exists()
    assert (settings.results_dir / job_id).exists() and jobs.upload_path(
        settings, job_id
    ).exists()  # its job still exists: kept


def corruptions(data: bytes, rng: np.random.Generator, flips: int, cuts: int):
    for i in range(flips):
        b = bytearray(data)
        for pos in rng.integers(32, len(b), size=int(rng.integers(1, 40))):
            b[pos] ^= int(rng.integers(1, 256))
        yield f"flip{i}", bytes(b)
    for i, frac in enumerate(rng.uniform(0.05, 0.95, size=cuts)):
        yield f"cut{i}", data[: int(len(data) * frac)]


@pytest.mark.parametrize("kind", ["astronaut_mp4", "astronaut_avi"])
def test_corrupted_videos_are_a_clean_4xx_or_an_ended_job(client, run_burst_worker, videos, tmp_path, kind):
    rng = np.random.default_rng(7)
    accepted = []
    for name, data in corruptions(videos[kind].read_bytes(), rng, flips=6, cuts=4):
        path = tmp_path / f"{name}{videos[kind].suffix}"
        path.write_bytes(data)
        r = post(client, path)
        assert r.status_code in (202, 413, 415, 422), (name, r.text)
        if r.status_code == 202:
            accepted.append((name, r.json()["job_id"]))
        else:
            assert set(r.json()) == {"error"}
    run_burst_worker()  # returns: the worker survived every one of them
    for name, job_id in accepted:
        view = client.get(f"/jobs/{job_id}").json()
        assert view["status"] in ("finished", "failed"), (name, view)
        if view["status"] == "failed":
            assert view["error"]["code"] in ("undecodable_video", "no_frames", "no_face", "unreadable_video"), (
                name,
                view,
            )


def test_openapi_fuzzing_finds_no_server_error_and_no_undocumented_response(redis_url, tmp_path, model_dir):
    """Property-based requests against the live schema (schemathesis), bounded, in-process."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings as hsettings
    from schemathesis.checks import (
        content_type_conformance,
        not_a_server_error,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    # Not positive_data_acceptance: a schema cannot say "the binary must be a video", so a
    # schema-valid upload of random bytes is rightly refused (415).
    CHECKS = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
        response_headers_conformance,
    ]
    app = create_app(make_settings(redis_url, tmp_path / "s", model_dir, max_upload_mb=1))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures, seen = [], []
    for operation in schema.get_all_operations():
        op = operation.ok()

        @hsettings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=op.as_strategy())
        def check(case):
            # /readyz's 503 is its documented answer while no worker runs (none does here)
            seen.append(op.label)  # noqa: B023  called within this iteration
            checks = [c for c in CHECKS if not (op.path == "/readyz" and c is not_a_server_error)]  # noqa: B023  called within this iteration
            try:
                case.call_and_validate(checks=checks)
            except (Exception, *EXCEPTION_GROUPS) as e:  # collect, so one run reports every operation
                failures.append(f"{op.label}: {type(e).__name__}: {str(e)[:300]}")  # noqa: B023  called within this iteration

        check()
    assert not failures, "\n".join(failures[:10])
    assert len(set(seen)) >= 7 and len(seen) >= 50, (
        len(set(seen)),
        len(seen),
        sorted(set(seen)),
    )  # every operation; parameterless ones need one request
