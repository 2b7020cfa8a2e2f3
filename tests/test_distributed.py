"""The API and two workers as if on three machines: nothing in common but Redis (over TCP) and an
S3 bucket (a real SeaweedFS server). Each process has its own RAMFER_STORAGE_DIR and TMPDIR; none of
them is written to for good. Then the S3 server goes down mid-run and comes back."""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from conftest import say
from live_cluster import get, running_cluster, wait_for
from live_service import free_port
from test_api import PNG
from videos import astronaut_frames, write_video

from service.embedded import EmbeddedRedis

VIDEOS = 20


@pytest.fixture
def tcp_redis():
    """Redis on TCP with a password, as docker-compose.yml publishes it to the workers of other hosts."""
    server = EmbeddedRedis(port=free_port(), password=uuid.uuid4().hex)
    yield server.start()
    server.cleanup()


@contextmanager
def started_again_after(s3_server):
    """The session's S3 server running when the block ends, for the tests after this one."""
    try:
        yield
    finally:
        if s3_server.proc is None:
            s3_server.start()


def files_in(folder: str) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file())


def test_api_and_two_workers_share_only_redis_and_s3_and_survive_an_s3_outage(tmp_path, tcp_redis, s3_server):
    env = {"RAMFER_TORCH_THREADS": "1", "RAMFER_HEARTBEAT_S": "1", "RAMFER_HEARTBEAT_GRACE_S": "5"}
    with (
        running_cluster(tmp_path, tcp_redis, s3_server.env(), workers=2, env=env) as cluster,
        started_again_after(s3_server),
    ):
        url, procs, envs = cluster.url, cluster.procs, cluster.envs
        from redis import Redis
        from redis.exceptions import AuthenticationError

        with pytest.raises(AuthenticationError):  # the password is needed: they all used it
            Redis.from_url(tcp_redis.replace(tcp_redis.split(":")[2].split("@")[0], "wrong")).ping()
        say("API and 2 workers ready; 20 videos")

        # 20 short videos, each with its own length: a result is recognised as its video's own
        lengths = {}
        for i in range(VIDEOS):
            path = write_video(tmp_path / "videos" / f"v{i}.mp4", astronaut_frames(8 + i, size=(320, 240)))
            r = httpx.post(f"{url}/predict", files={"file": (path.name, path.read_bytes(), "video/mp4")}, timeout=30)
            assert r.status_code == 202, r.text
            lengths[r.json()["job_id"]] = 8 + i

        def all_ended():
            views = {j: httpx.get(f"{url}/jobs/{j}", timeout=5).json() for j in lengths}
            return views if all(v["status"] in ("finished", "failed") for v in views.values()) else None

        views = wait_for(all_ended, 300, "20 jobs ended", procs)
        for job_id, view in views.items():
            assert view["status"] == "finished", view
            assert view["result"]["video"]["frames"] == lengths[job_id]
            for image in view["result"]["attention_maps"]:
                png = httpx.get(image["url"], timeout=5)
                assert png.status_code == 200 and png.content.startswith(PNG), image
        # every finished job's upload kept for the page's player (KEEP_VIDEOS), nothing else
        assert sorted(s3_server.keys("uploads/")) == sorted(f"uploads/{j}.video" for j in lengths)
        # each job's images: its one person's three maps (peak, peak_clip, peak_evidence) and face, and the maps
        # again under the top level's names
        assert len([k for k in s3_server.keys("results/") if k.split("/")[1] in lengths]) == 7 * VIDEOS
        # both workers took jobs (RQ records who ran each)
        from rq.job import Job
        from rq.serializers import JSONSerializer

        redis = Redis.from_url(tcp_redis)
        ran_by = {Job.fetch(j, connection=redis, serializer=JSONSerializer).worker_name for j in lengths}
        assert len(ran_by) == 2, ran_by
        # no process kept a file on its own disk: uploads, downloads and renders all removed
        for name, env in envs.items():
            assert files_in(env["TMPDIR"]) == [], (name, files_in(env["TMPDIR"]))
            assert not Path(env["RAMFER_STORAGE_DIR"]).exists(), name

        # --- S3 goes down with jobs queued and running --------------------------------------------
        say("S3 outage")
        long_video = write_video(tmp_path / "videos" / "long.mp4", astronaut_frames(240, size=(320, 240)))
        during = []
        for _ in range(4):
            r = httpx.post(
                f"{url}/predict", files={"file": ("long.mp4", long_video.read_bytes(), "video/mp4")}, timeout=30
            )
            assert r.status_code == 202, r.text
            during.append(r.json()["job_id"])
        wait_for(
            lambda: any(httpx.get(f"{url}/jobs/{j}").json()["status"] == "started" for j in during),
            60,
            "a job started",
            procs,
        )
        s3_server.stop()
        ready = httpx.get(f"{url}/readyz", timeout=15)
        assert ready.status_code == 503 and ready.json()["error"]["code"] == "storage_unavailable"
        r = httpx.post(f"{url}/predict", files={"file": ("long.mp4", long_video.read_bytes(), "video/mp4")}, timeout=30)
        assert r.status_code == 503 and r.json()["error"]["code"] == "storage_unavailable" and r.headers["retry-after"]
        image = next(iter(views.values()))["result"]["attention_maps"][0]["url"]
        assert httpx.get(image, timeout=15).status_code == 503
        # every job ends, visibly: a job that needed the storage while it was down says so
        ended = {}
        wait_for(
            lambda: (
                ended.update(
                    {
                        j: v
                        for j in during
                        if (v := httpx.get(f"{url}/jobs/{j}").json())["status"] in ("finished", "failed")
                    }
                )
                or len(ended) == len(during)
            ),
            240,
            "jobs ended during the outage",
            procs,
        )
        failed = [v for v in ended.values() if v["status"] == "failed"]
        assert failed, "no job needed the storage during the outage"
        for v in failed:
            assert v["error"]["code"] == "storage_unavailable" and "submit it again" in v["error"]["message"], v
        say(f"outage: {len(failed)} of {len(during)} jobs failed with storage_unavailable")

        # --- S3 is back: the API is ready again, uploads work, the workers carry on ---------------
        s3_server.start()
        wait_for(
            lambda: (r := get(f"{url}/readyz")) is not None and r.status_code == 200,
            60,
            "ready after the outage",
            procs,
        )
        assert httpx.get(image, timeout=5).content.startswith(PNG)  # the results from before are all there
        path = tmp_path / "videos" / "v0.mp4"
        r = httpx.post(
            f"{url}/predict?wait=60", files={"file": (path.name, path.read_bytes(), "video/mp4")}, timeout=90
        )
        assert r.status_code == 200, r.text
        assert r.json()["video"]["frames"] == 8
        assert httpx.get(r.json()["attention_maps"][0]["url"], timeout=5).content.startswith(PNG)
        assert all(p.poll() is None for p in procs)  # nobody crashed over it
