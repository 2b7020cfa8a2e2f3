"""What the service is and whether it can work: liveness, readiness, Prometheus metrics (and the
middleware that counts every request for them), and the served model."""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service import jobs, live
from service.deps import QueueDep, SettingsDep, StorageDep
from service.errors import ERRORS, ApiError
from service.schemas import Health, ModelInfo, Ready
from service.selfcheck import model_unavailable
from training.checkpoint import CheckpointError, read_config

log = logging.getLogger(__name__)
router = APIRouter()


@router.get("/model", response_model=ModelInfo, responses=ERRORS, summary="The served model")
def get_model(settings: SettingsDep):
    try:
        c = read_config(settings.model_dir)
    except CheckpointError as e:
        log.error("%s", model_unavailable(settings, e))  # names the folder: for the log, not the caller
        raise ApiError(
            503, "model_unavailable", "The served model cannot be read; the operator has been told in the log."
        ) from e
    return {
        "name": c.get("name"),
        "decision": c.get("decision"),
        "variant": c["model"]["variant"],
        "classes": c["classes"],
        "input_size": c["model"]["input_size"],
        "clip_length": c["clip"]["length"],
        "stride": c["clip"]["stride"],
        "sha256": c["weights_sha256"],
        "parameters": c.get("parameters", 0),
        "crop": c["crop"],
        "metrics": c.get("metrics", {}),
        "training": {k: c.get(k) for k in ("command", "seed", "train", "data", "trained_on", "train_seconds")},
    }


@router.get("/healthz", response_model=Health, summary="Liveness")
def healthz():
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=Ready,
    responses=ERRORS,
    summary="Readiness: Redis, the storage and a worker with the model",
)
def readyz(request: Request, queue: QueueDep, storage: StorageDep):
    queue.connection.ping()
    storage.ping()
    workers = len(jobs.live_workers(queue))
    if workers == 0:
        raise ApiError(503, "no_workers", "No worker with the model is running; jobs would wait.")
    return {
        "status": "ready",
        "redis": True,
        "storage": True,
        "workers": workers,
        "queue_depth": jobs.queue_depth(queue),
        "live_workers": live.live_worker_count(queue.connection, request.app.state.settings),
    }


@router.get(
    "/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}}, summary="Prometheus metrics"
)
def metrics(request: Request):
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def observe(request: Request, call_next):
    """HTTP middleware: every request counted and timed by its route (/metrics)."""
    start = time.perf_counter()
    status = 500
    try:
        response = await call_next(request)
        status = response.status_code
        return response
    finally:
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        request.app.state.metrics.requests.labels(request.method, path, str(status)).inc()
        request.app.state.metrics.latency.labels(path).observe(time.perf_counter() - start)
