"""Who may call the API and how much (docs/security.md): the API key every route but the open
ones needs, and the limits an upload meets before it is read (a full queue, a client's uploads a
minute). The WebSocket's key is checked by service/live.py with the same key_is_valid."""

from __future__ import annotations

import hashlib
import hmac
import time

from fastapi import Request
from rq import Queue

from service.errors import ApiError, error_response
from service.settings import Settings

# Need no API key: probes, the page, and the API's description with its /docs and /redoc pages
# (no data in any of them; a browser opening /docs cannot send a key, and Swagger UI's
# "Authorize" button then adds it to the calls it makes).
DOCS_ASSETS = "/docs/static"  # Swagger UI's and ReDoc's files, served from the fastapi-offline package
OPEN_PATHS = {"/", "/healthz", "/readyz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


def is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(DOCS_ASSETS + "/")


def key_is_valid(header: str, keys: list[str]) -> bool:
    """Bearer token against every configured key, in constant time (no early exit on a match)."""
    scheme, _, token = header.partition(" ")
    token = token.strip().encode()
    ok = False
    for key in keys:
        ok |= hmac.compare_digest(token, key.encode())
    return scheme.lower() == "bearer" and ok


async def require_api_key(request: Request, call_next):
    """HTTP middleware: 401 for a request without a valid key, where the service has keys (API_KEYS)."""
    keys = request.app.state.settings.api_keys
    if (
        keys
        and not is_open(request.url.path)
        and request.method != "OPTIONS"
        and not key_is_valid(request.headers.get("authorization", ""), keys)
    ):
        return error_response(
            401,
            "unauthorized",
            "This service needs an API key: send 'Authorization: Bearer <key>'.",
            {"WWW-Authenticate": "Bearer"},
        )
    return await call_next(request)


def client_id(request: Request) -> str:
    """Who a rate limit counts: the API key's hash when keys are on, else the peer address."""
    auth = request.headers.get("authorization", "")
    if auth:
        return "key:" + hashlib.sha256(auth.encode()).hexdigest()[:16]
    return "ip:" + (request.client.host if request.client else "unknown")


def check_rate_and_room(queue: Queue, settings: Settings, who: str) -> None:
    """429 when the queue is full or this client has used its uploads for the minute."""
    if queue.count >= settings.max_queued_jobs:
        raise ApiError(
            429,
            "queue_full",
            "Too many videos are waiting; try again shortly.",
            {"Retry-After": str(settings.queue_full_retry_after_s)},
        )
    if settings.rate_limit_per_minute > 0:
        minute = int(time.time() // 60)
        key = f"ramfer:rate:{who}:{minute}"
        with queue.connection.pipeline() as p:
            p.incr(key)
            p.expire(key, 120)
            count = p.execute()[0]
        if count > settings.rate_limit_per_minute:
            retry = str(60 - int(time.time() % 60))
            raise ApiError(
                429,
                "rate_limited",
                f"At most {settings.rate_limit_per_minute} uploads a minute per client.",
                {"Retry-After": retry},
            )
