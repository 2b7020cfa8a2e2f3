"""The HTTP API. Routes stay thin: uploads are received by service.upload, videos checked by
service.pipeline.check_video, jobs handled by service.jobs. Every error is JSON,
{"error": {"code", "message"}}, never a traceback."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import re
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated

import redis.exceptions
from fastapi import Depends, FastAPI, Query, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from rq import Queue
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from service import jobs, live
from service.metrics import Metrics
from service.pipeline import check_video
from service.schemas import Accepted, ErrorBody, Health, JobView, ModelInfo, PredictResult, Ready
from service.selfcheck import model_unavailable
from service.settings import Settings, get_settings
from service.storage import Storage, StorageUnavailable, ensure_bucket, image_key, make_storage, upload_key
from service.tables import timeline_csv
from service.upload import UploadError, receive_upload
from training.checkpoint import CheckpointError, read_config
from training.video import ACCEPTED, VideoError, sniff_container

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
IMAGE_NAME = re.compile(r"^[a-z0-9_]{1,64}$")
# Need no API key: probes, the page, and the API's description with its /docs and /redoc pages
# (no data in any of them; a browser opening /docs cannot send a key, and Swagger UI's
# "Authorize" button then adds it to the calls it makes).
DOCS_ASSETS = "/docs/static"  # Swagger UI's and ReDoc's files, served from the fastapi-offline package
OPEN_PATHS = {"/", "/healthz", "/readyz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}

# HTTP status of each way a video can be refused (the codes come from training.video,
# service.pipeline and the worker) and of each way a job can fail.
STATUS = {
    "empty_file": 422, "unsupported_format": 415, "unreadable_video": 422, "no_video_stream": 422,
    "undecodable_video": 422, "no_frames": 422, "no_face": 422,
    "resolution_too_large": 413, "video_too_long": 413,
    "worker_lost": 500, "job_timeout": 500, "internal_error": 500, "storage_unavailable": 503, "upload_missing": 500,
}
ERRORS = {code: {"model": ErrorBody} for code in (400, 404, 413, 415, 422, 429, 500, 503)}

try:
    __version__ = version("ramfer")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_response(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        await run_in_threadpool(ensure_bucket, app.state.storage, settings)
        janitor = asyncio.create_task(delete_expired_periodically(app))
        yield
        janitor.cancel()
        if app.state.live_redis is not None:
            await app.state.live_redis.aclose()

    classes = served_classes(settings)
    # FastAPIOffline: FastAPI with /docs and /redoc loading their scripts from this server, not a CDN
    # (deployments are often air-gapped); the files come with the fastapi-offline package.
    app = FastAPIOffline(
        title="ramfer: video facial expression recognition",
        version=__version__,
        description=(
            f"Upload a video of a face; get back the expression ({describe_classes(classes)}), when it "
            "happened, and where the model looked. Enhanced ConvLSTM + Recurrent Attention Module."
        ),
        lifespan=lifespan,
        static_url=DOCS_ASSETS,
    )
    app.state.settings = settings
    app.state.storage = make_storage(settings)
    app.state.queue = None
    app.state.live_redis = None  # redis.asyncio, made on the first live session
    app.state.metrics = Metrics(lambda: queue_of(app), app.state.storage)
    install_error_handlers(app)

    @app.middleware("http")
    async def require_api_key(request: Request, call_next):
        if settings.api_keys and not is_open(request.url.path) and request.method != "OPTIONS":
            if not key_is_valid(request.headers.get("authorization", ""), settings.api_keys):
                return error_response(401, "unauthorized", "This service needs an API key: send 'Authorization: Bearer <key>'.",
                                      {"WWW-Authenticate": "Bearer"})
        return await call_next(request)

    @app.middleware("http")
    async def observe(request: Request, call_next):
        start = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = request.scope.get("route")
            path = getattr(route, "path", "unmatched")
            app.state.metrics.requests.labels(request.method, path, str(status)).inc()
            app.state.metrics.latency.labels(path).observe(time.perf_counter() - start)

    if settings.cors_origins:  # off unless configured: browsers elsewhere cannot call the API
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"], expose_headers=["Location", "Retry-After"],
        )
    app.include_router(routes())
    describe_served_model(app, classes)
    if settings.api_keys:
        document_bearer_auth(app)
    return app


def is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(DOCS_ASSETS + "/")


def served_classes(settings: Settings) -> list[str] | None:
    """The classes of the checkpoint this service serves (None while it cannot be read: /model says why)."""
    try:
        return list(read_config(settings.model_dir)["classes"])
    except CheckpointError as e:
        log.warning("the API description names no classes: %s", model_unavailable(settings, e))
        return None
    except (KeyError, TypeError) as e:
        log.warning("the model's classes cannot be read for the API description: %s", e)
        return None


def describe_classes(classes: list[str] | None) -> str:
    if not classes:
        return "one of the served model's classes"
    return f"one of the served model's {len(classes)} classes: {', '.join(classes)}"


def describe_served_model(app: FastAPI, classes: list[str] | None) -> None:
    """Result.expression in the OpenAPI document names the checkpoint's classes, not a fixed list."""
    build = app.openapi

    def openapi():
        if app.openapi_schema is None:
            spec = build()
            for schema in spec["components"]["schemas"].values():  # Result, and PredictResult built on it
                expression = schema.get("properties", {}).get("expression")
                if expression is not None:
                    expression["description"] = describe_classes(classes)
                    if classes:
                        expression["enum"] = classes
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi


def key_is_valid(header: str, keys: list[str]) -> bool:
    """Bearer token against every configured key, in constant time (no early exit on a match)."""
    scheme, _, token = header.partition(" ")
    token = token.strip().encode()
    ok = False
    for key in keys:
        ok |= hmac.compare_digest(token, key.encode())
    return scheme.lower() == "bearer" and ok


def document_bearer_auth(app: FastAPI) -> None:
    """Declare the API key in the OpenAPI document, so clients and /docs know to send it."""
    build = app.openapi

    def openapi():
        if app.openapi_schema is None:
            spec = build()
            spec.setdefault("components", {}).setdefault("securitySchemes", {})["apiKey"] = {"type": "http", "scheme": "bearer"}
            for path, ops in spec["paths"].items():
                if path not in OPEN_PATHS:
                    for op in ops.values():
                        op["security"] = [{"apiKey": []}]
                        op.setdefault("responses", {})["401"] = {"description": "missing or wrong API key",
                                                                 "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi


def client_id(request: Request) -> str:
    """Who a rate limit counts: the API key's hash when keys are on, else the peer address."""
    auth = request.headers.get("authorization", "")
    if auth:
        return "key:" + hashlib.sha256(auth.encode()).hexdigest()[:16]
    return "ip:" + (request.client.host if request.client else "unknown")


def check_rate_and_room(queue: Queue, settings: Settings, who: str) -> None:
    """429 when the queue is full or this client has used its uploads for the minute."""
    if queue.count >= settings.max_queued_jobs:
        raise ApiError(429, "queue_full", "Too many videos are waiting; try again shortly.", {"Retry-After": str(settings.queue_full_retry_after_s)})
    if settings.rate_limit_per_minute > 0:
        minute = int(time.time() // 60)
        key = f"ramfer:rate:{who}:{minute}"
        with queue.connection.pipeline() as p:
            p.incr(key)
            p.expire(key, 120)
            count = p.execute()[0]
        if count > settings.rate_limit_per_minute:
            retry = str(60 - int(time.time() % 60))
            raise ApiError(429, "rate_limited", f"At most {settings.rate_limit_per_minute} uploads a minute per client.", {"Retry-After": retry})


def queue_of(app: FastAPI) -> Queue:
    if app.state.queue is None:  # created on first use: the app starts even when Redis is down
        app.state.queue = jobs.make_queue(jobs.connect(app.state.settings), app.state.settings)
    return app.state.queue


def get_queue(request: Request) -> Queue:
    return queue_of(request.app)


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_storage(request: Request) -> Storage:
    return request.app.state.storage


QueueDep = Annotated[Queue, Depends(get_queue)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
StorageDep = Annotated[Storage, Depends(get_storage)]


def routes():
    from fastapi import APIRouter

    router = APIRouter()

    @router.post(
        "/predict",
        response_model=PredictResult,
        responses={202: {"model": Accepted, "description": "still running: poll status_url"}, **ERRORS},
        summary="Analyse a video",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"multipart/form-data": {"schema": {
                    "type": "object", "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary", "description": f"the video ({ACCEPTED})"}},
                }}},
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
        metrics = request.app.state.metrics
        # no Redis or no storage (503), a full queue or a spent rate limit (429): said before the upload is read
        await run_in_threadpool(check_rate_and_room, queue, settings, client_id(request))
        await run_in_threadpool(storage.ping)
        job_id = jobs.new_job_id()
        key = upload_key(job_id)
        # Local storage: the upload streams to its final place. S3: to a local file, probed, then put.
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
            await run_in_threadpool(jobs.submit, queue, settings, job_id, {"filename": upload.filename[:200], "bytes": upload.size})
        except BaseException:
            staged.unlink(missing_ok=True)
            with contextlib.suppress(Exception):  # else the expiry cleanup removes it
                await run_in_threadpool(storage.delete, key)
            raise
        metrics.submitted.inc()
        status_url = str(request.url_for("get_job", job_id=job_id))
        deadline = time.monotonic() + min(wait, settings.max_wait_s)
        delay = 0.05
        while time.monotonic() < deadline:
            await asyncio.sleep(min(delay, max(deadline - time.monotonic(), 0)))
            delay = min(delay * 1.5, 0.5)
            view = await run_in_threadpool(current_view, queue, job_id, base_url(request))
            if view["status"] == "finished":
                return {**view["result"], "job_id": job_id, "status_url": status_url}
            if view["status"] == "failed":
                err = view["error"]
                raise ApiError(STATUS.get(err["code"], 500), err["code"], err["message"])
        return JSONResponse({"job_id": job_id, "status_url": status_url}, status_code=202, headers={"Location": status_url})

    @router.get("/jobs/{job_id}", response_model=JobView, responses=ERRORS, name="get_job", summary="A job's status and result")
    def get_job(job_id: str, request: Request, queue: QueueDep):
        view = current_view(queue, job_id, base_url(request))
        if view is None:
            raise ApiError(404, "unknown_job", f"No job {job_id!r} (unknown, or its result has expired).")
        return view

    @router.get(
        "/jobs/{job_id}/attention/{name}.png",
        response_class=Response,
        responses={200: {"content": {"image/png": {}}, "description": "the image"},
                   307: {"description": "S3_PRESIGNED_URLS: the image's presigned URL in the bucket (Location)"}, **ERRORS},
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
        responses={200: {"content": {"video/mp4": {}, "video/webm": {}, "video/ogg": {}, "application/octet-stream": {}},
                         "description": "the uploaded video, as it was uploaded"},
                   206: {"description": "the bytes a Range header asked for (Content-Range says which)"},
                   307: {"description": "S3_PRESIGNED_URLS: the video's presigned URL in the bucket (Location)"},
                   416: {"model": ErrorBody, "description": "the Range asked for lies beyond the video's end"}, **ERRORS},
        summary="A job's uploaded video, for a player (Range requests: seeking works)",
    )
    def get_video(job_id: str, request: Request, queue: QueueDep, storage: StorageDep):
        """The video that was uploaded, kept as long as the job's images when it finished (KEEP_VIDEOS);
        one byte range at a time (`Range: bytes=START-END`), as a browser's player asks while seeking."""
        missing = ApiError(404, "unknown_video", f"No video for job {job_id!r} (unknown, expired, failed, or videos are not kept).")
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
                return StreamingResponse(storage.stream(key), media_type=media_type, headers={**headers, "Content-Length": str(size)})
            start, end = wanted
            return StreamingResponse(storage.stream(key, start, end), status_code=206, media_type=media_type,
                                     headers={**headers, "Content-Length": str(end - start + 1), "Content-Range": f"bytes {start}-{end}/{size}"})
        except FileNotFoundError:
            raise missing from None

    @router.get(
        "/jobs/{job_id}/timeline.csv",
        response_class=Response,
        responses={200: {"content": {"text/csv": {}}, "description": "the timeline, a row per person per clip (README, "
                         "\"The timeline as a table\")"},
                   409: {"model": ErrorBody, "description": "the job has not finished (job_not_finished) or failed (job_failed)"},
                   **ERRORS},
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
            raise ApiError(409, "job_not_finished", f"Job {job_id!r} is {view['status']}; its timeline exists once it has finished.")
        return Response(timeline_csv(view["result"]), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'inline; filename="{job_id}-timeline.csv"'})

    @router.get("/model", response_model=ModelInfo, responses=ERRORS, summary="The served model")
    def get_model(settings: SettingsDep):
        try:
            c = read_config(settings.model_dir)
        except CheckpointError as e:
            log.error("%s", model_unavailable(settings, e))  # names the folder: for the log, not the caller
            raise ApiError(503, "model_unavailable", "The served model cannot be read; the operator has been told in the log.") from e
        return {
            "name": c.get("name"), "decision": c.get("decision"),
            "variant": c["model"]["variant"], "classes": c["classes"], "input_size": c["model"]["input_size"],
            "clip_length": c["clip"]["length"], "stride": c["clip"]["stride"], "sha256": c["weights_sha256"],
            "parameters": c.get("parameters", 0), "crop": c["crop"], "metrics": c.get("metrics", {}),
            "training": {k: c.get(k) for k in ("command", "seed", "train", "data", "trained_on", "train_seconds")},
        }

    @router.get("/healthz", response_model=Health, summary="Liveness")
    def healthz():
        return {"status": "ok"}

    @router.get("/readyz", response_model=Ready, responses=ERRORS, summary="Readiness: Redis, the storage and a worker with the model")
    def readyz(request: Request, queue: QueueDep, storage: StorageDep):
        queue.connection.ping()
        storage.ping()
        workers = len(jobs.live_workers(queue))
        if workers == 0:
            raise ApiError(503, "no_workers", "No worker with the model is running; jobs would wait.")
        return {"status": "ready", "redis": True, "storage": True, "workers": workers, "queue_depth": jobs.queue_depth(queue),
                "live_workers": live.live_worker_count(queue.connection, request.app.state.settings)}

    @router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}}, summary="Prometheus metrics")
    def metrics(request: Request):
        return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @router.get("/live", status_code=426, responses={426: {"model": ErrorBody, "description": "not a WebSocket request"}},
                summary="Live: a camera stream analysed as it happens (WebSocket)")
    def live_protocol():
        """**A WebSocket** (`ws://HOST/live`, `wss://` behind TLS); a plain GET answers 426. The protocol
        (README, "Live"):

        1. Client: a text message `{"type": "start", "fps": 15}` (the rate it will send at, 1-60), with
           `"api_key": "KEY"` when the service needs keys (a browser cannot set headers; other clients
           may send `Authorization: Bearer KEY` instead).
        2. Service: `{"type": "ready", "session", "fps", "limits"}` once a live worker serves it.
        3. Client: frames, each a binary message: its capture time (8 bytes, float64 big-endian,
           seconds, increasing) then a JPEG image (at most LIVE_MAX_FRAME_KB).
        4. Service, as each 8-frame clip (stride 2) closes: `{"type": "clip", "clip", "person",
           "start_s", "end_s", "label", "probabilities", "face": {"x", "y", "width", "height"}}` (times are
           the client's capture times; the box in frame pixels); every LIVE_DECIDE_EVERY_CLIPS clips
           `{"type": "decision", "person", "expression", "confidence", "votes", "clips", "start_s",
           "end_s", "attention", "frames_received", "frames_analysed", "dropped", "fps_analysed"}`: the
           service's decision rule over the last LIVE_WINDOW_S seconds, where the network looked
           (an h x w grid over the face box), and how many frames were dropped because they came
           faster than the worker read them (only the newest LIVE_BUFFER_FRAMES wait).
        5. Client: `{"type": "stop"}`; service: the last clips, a decision, `{"type": "end", ...counts}`,
           close 1000.

        Errors: `{"type": "error", "code", "message"}`, then a close with code 4000 + the HTTP status
        that means the same: 4400 bad_message, bad_frame, frame_out_of_order, frame_size_changed;
        4401 unauthorized; 4408 idle_timeout, not_reading; 4413 frame_too_large, resolution_too_large;
        4429 too_many_sessions; 4503 no_live_worker, worker_lost, redis_unavailable; 4500 internal_error."""
        raise ApiError(426, "websocket_required", "GET /live is a WebSocket: connect with ws:// (see this route's description).",
                       {"Upgrade": "websocket"})

    @router.websocket("/live")
    async def live_socket(websocket: WebSocket):
        app = websocket.app
        if app.state.live_redis is None:
            app.state.live_redis = live.connect(app.state.settings)
        await live.run_session(websocket, app.state.settings, app.state.live_redis, key_is_valid)

    @router.get("/", response_class=FileResponse, include_in_schema=False)
    def index():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    return router


# What a browser is told an upload is, by its container (training.video.sniff_container); the others
# (AVI, FLV, MPEG, ...) are sent as bytes: a browser cannot play them, and the page says so.
VIDEO_TYPES = {"mov,mp4,m4a,3gp,3g2,mj2": "video/mp4", "matroska,webm": "video/webm", "ogg": "video/ogg"}
BYTE_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


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
        raise ApiError(416, "range_not_satisfiable", f"The video has {size} bytes; the range asked for is not within them.",
                       {"Content-Range": f"bytes */{size}"})
    return start, end


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def current_view(queue: Queue, job_id: str, base: str) -> dict | None:
    job = jobs.fetch(queue, job_id)
    if job is None:
        return None
    if job.get_status() == "started":
        jobs.fail_lost_jobs(queue)  # a dead worker's job turns "failed" here, not never
        job = jobs.fetch(queue, job_id) or job
    return jobs.job_view(job, base)


async def delete_expired_periodically(app: FastAPI, every_s: float = 60.0) -> None:
    while True:
        await asyncio.sleep(every_s)
        try:
            await run_in_threadpool(jobs.delete_expired_files, queue_of(app).connection, app.state.storage)
        except Exception as e:
            log.warning("cleanup of expired files failed: %s", e)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, e: ApiError):
        return error_response(e.status, e.code, e.message, e.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code, f"http_{e.status_code}")
        return error_response(e.status_code, code, str(e.detail), getattr(e, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, e: RequestValidationError):
        parts = [f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()]
        return error_response(422, "invalid_request", "; ".join(parts) or "invalid request")

    @app.exception_handler(redis.exceptions.ConnectionError)
    @app.exception_handler(redis.exceptions.TimeoutError)
    async def redis_down(request: Request, e: Exception):
        log.warning("Redis unavailable: %s", e)
        return error_response(503, "queue_unavailable", "The job queue (Redis) cannot be reached. Try again shortly.", {"Retry-After": "5"})

    @app.exception_handler(StorageUnavailable)
    async def storage_down(request: Request, e: StorageUnavailable):
        log.warning("storage unavailable: %s", e)  # names the endpoint and bucket: the log's, not the caller's
        return error_response(503, "storage_unavailable", "The storage for videos and results cannot be reached. Try again shortly.",
                              {"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def internal(request: Request, e: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "Internal error; it has been logged.")
