"""The job queue as the API and the workers see it: submitting, reading back, failing the lost,
and deleting what has expired. Jobs and results travel as JSON (no pickle); videos travel through
the storage (service/storage.py: a shared directory or an S3 bucket), never as bytes inside Redis."""

from __future__ import annotations

import logging
import re
import secrets
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
from service.storage import Storage, StorageUnavailable, results_prefix, upload_key

log = logging.getLogger(__name__)

ANALYSE = "service.worker.analyse_job"  # by name: the API never imports torch
JOB_ID = re.compile(r"^[0-9a-f]{32}$")
STATS = "ramfer:stats"  # hash of cluster-wide job counters the workers keep (see metrics.py)
DURATION_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)  # job seconds, for the histogram

# Why a job failed, for the client: the worker stores {"code", "message"} for a bad video;
# the rest are failures of the machinery, told apart by RQ's exception text.
LOST = {
    "code": "worker_lost",
    "message": "The worker analysing this video stopped (it was killed or crashed). Please submit it again.",
}
TIMEOUT = {"code": "job_timeout", "message": "The analysis took longer than this service allows."}
INTERNAL = {
    "code": "internal_error",
    "message": "The analysis failed because of an internal error. It has been logged.",
}
STORAGE_DOWN = {
    "code": "storage_unavailable",
    "message": "The storage holding videos and results could not be reached while this video was analysed. "
    "Please submit it again.",
}
UPLOAD_MISSING = {
    "code": "upload_missing",
    "message": "The uploaded video was no longer in the storage when its turn came (expired or removed). Please submit it again.",
}


def connect(settings: Settings) -> Redis:
    # Short timeouts: when Redis is down the API must answer 503 quickly, not hang.
    return Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=15)


def make_queue(redis: Redis, settings: Settings) -> Queue:
    return Queue(settings.queue_name, connection=redis, serializer=JSONSerializer)


def new_job_id() -> str:
    return secrets.token_hex(16)  # 128 random bits: ids cannot be guessed


def upload_path(settings: Settings, job_id: str) -> Path:
    """Where the local storage keeps an upload (RAMFER_STORAGE_BACKEND=local)."""
    return settings.storage_dir / upload_key(job_id)


def result_dir(settings: Settings, job_id: str) -> Path:
    """Where the local storage keeps a job's images (RAMFER_STORAGE_BACKEND=local)."""
    return settings.storage_dir / results_prefix(job_id)


def submit(queue: Queue, settings: Settings, job_id: str, meta: dict) -> Job:
    # storage keys, not paths: a worker on another machine finds them in the same bucket
    return queue.enqueue(
        ANALYSE,
        kwargs={"upload": upload_key(job_id), "results": results_prefix(job_id)},
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


def result_images(result: dict) -> list[dict]:
    """Every image entry of a result ({"name", ...}): the top level's attention maps (the main
    person's), and each person's maps and picture. A name may come twice (the main person's maps);
    a worker stores each name once, a view gives every entry its URL."""
    images = list(result.get("attention_maps", []))
    for person in result.get("people", []):
        images += person.get("attention_maps", []) + ([person["thumbnail"]] if person.get("thumbnail") else [])
    return images


def job_view(job: Job, base_url: str = "") -> dict:
    """What GET /jobs/{id} shows: status, progress, and the result or the error."""
    status = job.get_status(refresh=False)
    state = {
        JobStatus.QUEUED: "queued",
        JobStatus.DEFERRED: "queued",
        JobStatus.SCHEDULED: "queued",
        JobStatus.STARTED: "started",
        JobStatus.FINISHED: "finished",
    }.get(status, "failed")
    result = None
    if state == "finished":
        result = job.return_value()
        for image in result_images(result):
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


def delete_expired_files(redis: Redis, storage: Storage, min_age_s: float = 60.0) -> int:
    """Remove uploads and result images whose job no longer exists in Redis (expired after
    result_ttl_s / failure_ttl_s, or deleted): files live as long as their job. A job's files are
    left alone while any is younger than `min_age_s`: the job may be being created. Returns how
    many uploads and result sets were removed."""
    now = time.time()
    newest: dict[str, float] = {}  # an upload key or a results prefix -> its newest file's time
    for prefix in ("uploads", "results"):
        for entry in storage.list(prefix):
            rest = entry.key[len(prefix) + 1 :]
            group = entry.key if prefix == "uploads" else f"results/{rest.split('/', 1)[0]}"
            newest[group] = max(newest.get(group, 0.0), entry.modified)
    removed = 0
    for group, modified in newest.items():
        if now - modified < min_age_s:
            continue
        job_id = group.split("/", 1)[1].removesuffix(".video")
        if JOB_ID.match(job_id) and redis.exists(f"rq:job:{job_id}"):
            continue
        try:
            storage.delete(group) if group.startswith("uploads/") else storage.delete_prefix(group)
            removed += 1
        except StorageUnavailable as e:
            log.warning("expired files not deleted: %s", e)
            break
    return removed
