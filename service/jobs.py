"""The job queue as the API and the workers see it: submitting, reading back, failing the lost,
and deleting what has expired. Jobs and results travel as JSON (no pickle); videos travel as
files in the shared storage directory, never as bytes inside Redis."""

from __future__ import annotations

import logging
import re
import secrets
import shutil
import time
from pathlib import Path

from redis import Redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer
from rq.worker import Worker

from service.settings import Settings

log = logging.getLogger(__name__)

ANALYSE = "service.worker.analyse_job"  # by name: the API never imports torch
JOB_ID = re.compile(r"^[0-9a-f]{32}$")
STATS = "ramfer:stats"  # hash of cluster-wide job counters the workers keep (see metrics.py)
DURATION_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)  # job seconds, for the histogram

# Why a job failed, for the client: the worker stores {"code", "message"} for a bad video;
# the rest are failures of the machinery, told apart by RQ's exception text.
LOST = {"code": "worker_lost", "message": "The worker analysing this video stopped (it was killed or crashed). Please submit it again."}
TIMEOUT = {"code": "job_timeout", "message": "The analysis took longer than this service allows."}
INTERNAL = {"code": "internal_error", "message": "The analysis failed because of an internal error. It has been logged."}


def connect(settings: Settings) -> Redis:
    # Short timeouts: when Redis is down the API must answer 503 quickly, not hang.
    return Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=15)


def make_queue(redis: Redis, settings: Settings) -> Queue:
    return Queue(settings.queue_name, connection=redis, serializer=JSONSerializer)


def new_job_id() -> str:
    return secrets.token_hex(16)  # 128 random bits: ids cannot be guessed


def upload_path(settings: Settings, job_id: str) -> Path:
    return settings.uploads_dir / f"{job_id}.video"


def result_dir(settings: Settings, job_id: str) -> Path:
    return settings.results_dir / job_id


def submit(queue: Queue, settings: Settings, job_id: str, video: Path, meta: dict) -> Job:
    return queue.enqueue(
        ANALYSE,
        kwargs={"upload": str(video), "out_dir": str(result_dir(settings, job_id))},
        job_id=job_id,
        job_timeout=settings.job_timeout_s,
        result_ttl=settings.result_ttl_s,
        failure_ttl=settings.failure_ttl_s,
        ttl=settings.job_timeout_s,  # a job nobody picks up within this long expires
        meta={"progress": {"stage": "queued"}, **meta},
        description="analyse video",
    )


def fetch(queue: Queue, job_id: str) -> Job | None:
    if not JOB_ID.match(job_id):
        return None
    try:
        return Job.fetch(job_id, connection=queue.connection, serializer=JSONSerializer)
    except NoSuchJobError:
        return None


def fail_lost_jobs(queue: Queue) -> None:
    """Jobs whose worker stopped sending heartbeats are marked failed (RQ's own cleanup)."""
    StartedJobRegistry(queue=queue).cleanup()


def job_error(job: Job) -> dict:
    meta_error = job.meta.get("error")
    if meta_error:
        return meta_error
    latest = job.latest_result()
    text = (latest.exc_string if latest else None) or ""
    if "AbandonedJobError" in text:
        return LOST
    if "JobTimeoutException" in text:
        return TIMEOUT
    return INTERNAL


def job_view(job: Job, base_url: str = "") -> dict:
    """What GET /jobs/{id} shows: status, progress, and the result or the error."""
    status = job.get_status(refresh=False)
    state = {
        JobStatus.QUEUED: "queued", JobStatus.DEFERRED: "queued", JobStatus.SCHEDULED: "queued",
        JobStatus.STARTED: "started", JobStatus.FINISHED: "finished",
    }.get(status, "failed")
    result = None
    if state == "finished":
        result = job.return_value()
        for image in result.get("attention_maps", []):
            image["url"] = f"{base_url}/jobs/{job.id}/attention/{image['name']}.png"
    return {
        "job_id": job.id,
        "status": state,
        "progress": job.meta.get("progress") or {},
        "result": result,
        "error": job_error(job) if state == "failed" else None,
    }


def live_workers(queue: Queue) -> list[Worker]:
    return Worker.all(queue=queue)


def queue_depth(queue: Queue) -> int:
    return queue.count


def delete_expired_files(redis: Redis, settings: Settings, min_age_s: float = 60.0) -> int:
    """Remove uploads and result folders whose job no longer exists in Redis (expired or
    deleted). Files younger than `min_age_s` are left alone: their job may be being created."""
    removed = 0
    now = time.time()
    for folder, suffix in ((settings.uploads_dir, ".video"), (settings.results_dir, "")):
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            job_id = path.name.removesuffix(suffix) if suffix else path.name
            if now - path.stat().st_mtime < min_age_s:
                continue
            if JOB_ID.match(job_id) and redis.exists(f"rq:job:{job_id}"):
                continue
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
            removed += 1
    return removed
