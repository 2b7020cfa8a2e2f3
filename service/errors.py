"""Every error the HTTP API answers is JSON, {"error": {"code", "message"}} (schemas.ErrorBody),
never a traceback: ApiError for the routes' own refusals, and handlers for what FastAPI, Redis and
the storage raise. docs/api.md lists the codes."""

from __future__ import annotations

import logging

import redis.exceptions
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.schemas import ErrorBody
from service.storage import StorageUnavailable

log = logging.getLogger(__name__)

# HTTP status of each way a video can be refused (the codes come from training.video,
# service.pipeline and the worker) and of each way a job can fail.
STATUS = {
    "empty_file": 422,
    "unsupported_format": 415,
    "unreadable_video": 422,
    "no_video_stream": 422,
    "undecodable_video": 422,
    "no_frames": 422,
    "no_face": 422,
    "resolution_too_large": 413,
    "video_too_long": 413,
    "worker_lost": 500,
    "job_timeout": 500,
    "internal_error": 500,
    "storage_unavailable": 503,
    "upload_missing": 500,
}
# The error answers every route may give, for the OpenAPI document
ERRORS = {code: {"model": ErrorBody} for code in (400, 404, 413, 415, 422, 429, 500, 503)}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_response(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(redis.exceptions.ConnectionError, redis_down)
    app.add_exception_handler(redis.exceptions.TimeoutError, redis_down)
    app.add_exception_handler(StorageUnavailable, storage_down)
    app.add_exception_handler(Exception, internal)


async def api_error(request: Request, e: ApiError) -> JSONResponse:
    return error_response(e.status, e.code, e.message, e.headers)


async def http_error(request: Request, e: StarletteHTTPException) -> JSONResponse:
    code = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code, f"http_{e.status_code}")
    return error_response(e.status_code, code, str(e.detail), getattr(e, "headers", None))


async def invalid_request(request: Request, e: RequestValidationError) -> JSONResponse:
    parts = [f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()]
    return error_response(422, "invalid_request", "; ".join(parts) or "invalid request")


async def redis_down(request: Request, e: Exception) -> JSONResponse:
    log.warning("Redis unavailable: %s", e)
    return error_response(
        503, "queue_unavailable", "The job queue (Redis) cannot be reached. Try again shortly.", {"Retry-After": "5"}
    )


async def storage_down(request: Request, e: StorageUnavailable) -> JSONResponse:
    log.warning("storage unavailable: %s", e)  # names the endpoint and bucket: the log's, not the caller's
    return error_response(
        503,
        "storage_unavailable",
        "The storage for videos and results cannot be reached. Try again shortly.",
        {"Retry-After": "5"},
    )


async def internal(request: Request, e: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "Internal error; it has been logged.")
