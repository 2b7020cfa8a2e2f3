"""What the routes are given (FastAPI dependencies): the app's settings, its storage and the job
queue, the last made on first use so that the API starts even while Redis is down."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, Request
from rq import Queue

from service import jobs
from service.settings import Settings
from service.storage import Storage


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


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


QueueDep = Annotated[Queue, Depends(get_queue)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
StorageDep = Annotated[Storage, Depends(get_storage)]
