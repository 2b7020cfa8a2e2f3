"""The routes of uploads and jobs: POST /predict, and a job's status, result, images, video and
timeline. Routes stay thin: uploads are received by service.upload, videos checked by
service.pipeline.check_video, jobs handled by service.jobs."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from rq import Queue
from starlette.concurrency import run_in_threadpool

from service import jobs
from service.deps import QueueDep, SettingsDep, StorageDep, base_url
from service.errors import ERRORS, STATUS, ApiError
from service.guards import check_rate_and_room, client_id
from service.pipeline import check_video
from service.schemas import Accepted, ErrorBody, JobView, PredictResult
from service.settings import Settings
from service.storage import Storage, image_key, upload_key
from service.tables import timeline_csv
from service.upload import UploadError, receive_upload
from training.video import ACCEPTED, VideoError, sniff_container

router = APIRouter()
IMAGE_NAME = re.compile(r"^[a-z0-9_]{1,64}$")
# What a browser is told an upload is, by its container (training.video.sniff_container); the others
# (AVI, FLV, MPEG, ...) are sent as bytes: a browser cannot play them, and the page says so.
VIDEO_TYPES = {"mov,mp4,m4a,3gp,3g2,mj2": "video/mp4", "matroska,webm": "video/webm", "ogg": "video/ogg"}
BYTE_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@router.post(
    "/predict",
    response_model=PredictResult,
    responses={202: {"model": Accepted, "description": "still running: poll status_url"}, **ERRORS},
    summary="Analyse a video",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {
                            "file": {"type": "string", "format": "binary", "description": f"the video ({ACCEPTED})"}
                        },
                    }
                }
            },
        }
    },
)
async def predict(
    request: Request,
    queue: QueueDep,
    settings: SettingsDep,
    storage: StorageDep,
    wait: Annotated[float, Query(ge=0, description="seconds to wait for the result before answering 202")] = 0.0,
):
    """Upload a video as multipart field `file`. The answer is the result (200) if the analysis
    ends within `wait` seconds, else 202 with the job's status URL (also in `Location`)."""
    # no Redis or no storage (503), a full queue or a spent rate limit (429): said before the upload is read
    await run_in_threadpool(check_rate_and_room, queue, settings, client_id(request))
    await run_in_threadpool(storage.ping)
    job_id = await enqueue(request, queue, settings, storage)
    status_url = str(request.url_for("get_job", job_id=job_id))
    result = await result_within(request, queue, job_id, min(wait, settings.max_wait_s))
    if result is not None:
        return {**result, "job_id": job_id, "status_url": status_url}
    return JSONResponse({"job_id": job_id, "status_url": status_url}, status_code=202, headers={"Location": status_url})


async def enqueue(request: Request, queue: Queue, settings: Settings, storage: Storage) -> str:
    """The upload received, checked, stored and queued as a new job: its id. Local storage: the
    upload streams to its final place. S3: to a local file, probed, then put. A refused video is
    an ApiError, and nothing of it is left behind."""
    metrics = request.app.state.metrics
    job_id = jobs.new_job_id()
    key = upload_key(job_id)
    staged = storage.staging_path(key)
    try:
        upload = await receive_upload(request, staged, settings.max_upload_bytes)
        await run_in_threadpool(check_video, staged, settings)
    except (UploadError, VideoError) as e:
        staged.unlink(missing_ok=True)
        metrics.rejected.labels(e.code).inc()
        raise ApiError(getattr(e, "status", None) or STATUS.get(e.code, 422), e.code, e.message) from e
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    try:
        await run_in_threadpool(storage.put_staged, key, staged)
        await run_in_threadpool(
            jobs.submit, queue, settings, job_id, {"filename": upload.filename[:200], "bytes": upload.size}
        )
    except BaseException:
        staged.unlink(missing_ok=True)
        with contextlib.suppress(Exception):  # else the expiry cleanup removes it
            await run_in_threadpool(storage.delete, key)
        raise
    metrics.submitted.inc()
    return job_id


async def result_within(request: Request, queue: Queue, job_id: str, wait_s: float) -> dict | None:
    """The job's result if it finishes within `wait_s` seconds (polled ever less often), else None;
    a job that fails in that time is its error as an ApiError."""
    deadline = time.monotonic() + wait_s
    delay = 0.05
    while time.monotonic() < deadline:
        await asyncio.sleep(min(delay, max(deadline - time.monotonic(), 0)))
        delay = min(delay * 1.5, 0.5)
        view = await run_in_threadpool(current_view, queue, job_id, base_url(request))
        if view["status"] == "finished":
            return view["result"]
        if view["status"] == "failed":
            err = view["error"]
            raise ApiError(STATUS.get(err["code"], 500), err["code"], err["message"])
    return None


@router.get(
    "/jobs/{job_id}", response_model=JobView, responses=ERRORS, name="get_job", summary="A job's status and result"
)
def get_job(job_id: str, request: Request, queue: QueueDep):
    view = current_view(queue, job_id, base_url(request))
    if view is None:
        raise ApiError(404, "unknown_job", f"No job {job_id!r} (unknown, or its result has expired).")
    return view


@router.get(
    "/jobs/{job_id}/attention/{name}.png",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}, "description": "the image"},
        307: {"description": "RAMFER_S3_PRESIGNED_URLS: the image's presigned URL in the bucket (Location)"},
        **ERRORS,
    },
    summary="An attention-map image of a finished job",
)
def get_attention(job_id: str, name: str, queue: QueueDep, storage: StorageDep):
    missing = ApiError(404, "unknown_image", f"No image {name!r} for job {job_id!r}.")
    if not (jobs.JOB_ID.match(job_id) and IMAGE_NAME.match(name)) or jobs.fetch(queue, job_id) is None:
        raise missing
    key = image_key(job_id, name)
    try:
        if (url := storage.url(key)) is not None:
            if not storage.exists(key):
                raise missing
            return RedirectResponse(url, status_code=307)
        return StreamingResponse(storage.stream(key), media_type="image/png")
    except FileNotFoundError:
        raise missing from None


@router.get(
    "/jobs/{job_id}/video",
    response_class=Response,
    responses={
        200: {
            "content": {"video/mp4": {}, "video/webm": {}, "video/ogg": {}, "application/octet-stream": {}},
            "description": "the uploaded video, as it was uploaded",
        },
        206: {"description": "the bytes a Range header asked for (Content-Range says which)"},
        307: {"description": "RAMFER_S3_PRESIGNED_URLS: the video's presigned URL in the bucket (Location)"},
        416: {"model": ErrorBody, "description": "the Range asked for lies beyond the video's end"},
        **ERRORS,
    },
    summary="A job's uploaded video, for a player (Range requests: seeking works)",
)
def get_video(job_id: str, request: Request, queue: QueueDep, storage: StorageDep):
    """The video that was uploaded, kept as long as the job's images when it finished (RAMFER_KEEP_VIDEOS);
    one byte range at a time (`Range: bytes=START-END`), as a browser's player asks while seeking."""
    missing = ApiError(
        404, "unknown_video", f"No video for job {job_id!r} (unknown, expired, failed, or videos are not kept)."
    )
    if not jobs.JOB_ID.match(job_id) or jobs.fetch(queue, job_id) is None:
        raise missing
    key = upload_key(job_id)
    try:
        if (url := storage.url(key)) is not None:  # the bucket answers the ranges itself
            if not storage.exists(key):
                raise missing
            return RedirectResponse(url, status_code=307)
        size = storage.size(key)
        head = b"".join(storage.stream(key, 0, min(size, 256) - 1)) if size else b""
        headers = {"Accept-Ranges": "bytes", "Cache-Control": "private, max-age=3600"}
        media_type = VIDEO_TYPES.get(sniff_container(head), "application/octet-stream")
        if (wanted := byte_range(request.headers.get("range"), size)) is None:
            return StreamingResponse(
                storage.stream(key), media_type=media_type, headers={**headers, "Content-Length": str(size)}
            )
        start, end = wanted
        return StreamingResponse(
            storage.stream(key, start, end),
            status_code=206,
            media_type=media_type,
            headers={**headers, "Content-Length": str(end - start + 1), "Content-Range": f"bytes {start}-{end}/{size}"},
        )
    except FileNotFoundError:
        raise missing from None


@router.get(
    "/jobs/{job_id}/timeline.csv",
    response_class=Response,
    responses={
        200: {
            "content": {"text/csv": {}},
            "description": 'the timeline, a row per person per clip (docs/usage.md, "The timeline as a table")',
        },
        409: {"model": ErrorBody, "description": "the job has not finished (job_not_finished) or failed (job_failed)"},
        **ERRORS,
    },
    summary="A finished job's timeline as CSV",
)
def get_timeline_csv(job_id: str, request: Request, queue: QueueDep):
    """A row per person per clip: `person`, `clip`, `start_s`, `end_s`, `face` (1: their face in every
    frame of the clip), `label`, and `p_<class>` for each class (calibrated, 0 to 1), the same numbers
    as the result's `people[].clips`."""
    view = current_view(queue, job_id, base_url(request))
    if view is None:
        raise ApiError(404, "unknown_job", f"No job {job_id!r} (unknown, or its result has expired).")
    if view["status"] == "failed":
        raise ApiError(409, "job_failed", f"Job {job_id!r} failed ({view['error']['code']}): it has no timeline.")
    if view["status"] != "finished":
        raise ApiError(
            409, "job_not_finished", f"Job {job_id!r} is {view['status']}; its timeline exists once it has finished."
        )
    return Response(
        timeline_csv(view["result"]),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'inline; filename="{job_id}-timeline.csv"'},
    )


def current_view(queue: Queue, job_id: str, base: str) -> dict | None:
    """GET /jobs/{id}'s answer (jobs.job_view), None for an unknown job; a started job whose worker
    has died is failed first, so that it never stays "started"."""
    job = jobs.fetch(queue, job_id)
    if job is None:
        return None
    if job.get_status() == "started":
        jobs.fail_lost_jobs(queue)  # a dead worker's job turns "failed" here, not never
        job = jobs.fetch(queue, job_id) or job
    return jobs.job_view(job, base)


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one byte range (start, end inclusive) a Range header asks for within `size` bytes; None
    for the whole file (no header, or one this route does not serve in parts: several ranges, other
    units). A range wholly past the end is a 416."""
    match = BYTE_RANGE.match((header or "").strip())
    if not match or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":  # the last N bytes
        start, end = max(size - int(last), 0), size - 1
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        raise ApiError(
            416,
            "range_not_satisfiable",
            f"The video has {size} bytes; the range asked for is not within them.",
            {"Content-Range": f"bytes */{size}"},
        )
    return start, end
