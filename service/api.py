"""The HTTP API, put together: the routers by area (service/api_jobs.py: uploads and jobs;
service/api_health.py: probes, metrics and the model; service/api_live.py: the live stream;
service/api_page.py: the page), the API key and the limits (service/guards.py), JSON errors
(service/errors.py) and the OpenAPI document's additions (service/openapi.py). The contract they
keep is docs/api.md."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool

from service import api_health, api_jobs, api_live, api_page, jobs
from service.deps import queue_of
from service.errors import install_error_handlers
from service.guards import DOCS_ASSETS, require_api_key
from service.metrics import Metrics
from service.openapi import complete_openapi, describe_classes, served_classes
from service.settings import Settings, get_settings
from service.storage import ensure_bucket, make_storage

log = logging.getLogger(__name__)

try:
    __version__ = version("ramfer")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
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
    # the last added runs first: CORS, then every request counted, then the key checked
    app.middleware("http")(require_api_key)
    app.middleware("http")(api_health.observe)
    if settings.cors_origins:  # off unless configured: browsers elsewhere cannot call the API
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
            expose_headers=["Location", "Retry-After"],
        )
    for area in (api_jobs, api_health, api_live, api_page):
        app.include_router(area.router)
    complete_openapi(app, classes, bearer=bool(settings.api_keys))
    return app


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI):
    """The bucket made if it is missing, expired files deleted every minute while the app runs, the
    live sessions' Redis client closed at the end."""
    await run_in_threadpool(ensure_bucket, app.state.storage, app.state.settings)
    janitor = asyncio.create_task(delete_expired_periodically(app))
    yield
    janitor.cancel()
    if app.state.live_redis is not None:
        await app.state.live_redis.aclose()


async def delete_expired_periodically(app: FastAPI, every_s: float = 60.0) -> None:
    while True:
        await asyncio.sleep(every_s)
        try:
            await run_in_threadpool(jobs.delete_expired_files, queue_of(app).connection, app.state.storage)
        except Exception as e:
            log.warning("cleanup of expired files failed: %s", e)
