"""What the OpenAPI document (/openapi.json, /docs) says beyond what FastAPI reads from the routes:
the served checkpoint's classes, the API key where the service needs one, and the live stream's
messages, which a WebSocket route cannot declare."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from pydantic import TypeAdapter

from service.guards import OPEN_PATHS
from service.schemas import LiveClientMessage, LiveServiceMessage
from service.selfcheck import model_unavailable
from service.settings import Settings
from training.checkpoint import CheckpointError, read_config

log = logging.getLogger(__name__)
REFS = "#/components/schemas/{model}"


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


def complete_openapi(app: FastAPI, classes: list[str] | None, bearer: bool) -> None:
    """The app's OpenAPI document, made once, with what the routes cannot say added."""
    build = app.openapi

    def openapi():
        if app.openapi_schema is None:
            spec = build()
            add_live_messages(spec)
            name_classes(spec, classes)
            if bearer:
                require_bearer(spec)
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi


def name_classes(spec: dict, classes: list[str] | None) -> None:
    """An `expression` names the checkpoint's classes, not a fixed list."""
    for schema in spec["components"]["schemas"].values():  # Result, PredictResult built on it, Person, LiveDecision
        expression = schema.get("properties", {}).get("expression")
        if expression is not None:
            expression["description"] = describe_classes(classes)
            if classes:
                expression["enum"] = classes


def add_live_messages(spec: dict) -> None:
    """The live protocol's messages as schemas (LiveStart ... LiveError), and on GET /live, under
    x-websocket-messages, which of them each side sends (told apart by `type`)."""
    schemas = spec["components"]["schemas"]
    sides = {}
    for side, messages, mode in (
        ("client", LiveClientMessage, "validation"),
        ("service", LiveServiceMessage, "serialization"),
    ):
        one_of = TypeAdapter(messages).json_schema(ref_template=REFS, mode=mode)
        for name, schema in one_of.pop("$defs", {}).items():
            schemas.setdefault(name, schema)
        sides[side] = one_of
    live = spec["paths"].get("/live", {}).get("get")
    if live is not None:
        live["x-websocket-messages"] = sides


def require_bearer(spec: dict) -> None:
    """Declare the API key, so clients and /docs know to send it."""
    spec.setdefault("components", {}).setdefault("securitySchemes", {})["apiKey"] = {"type": "http", "scheme": "bearer"}
    for path, ops in spec["paths"].items():
        if path not in OPEN_PATHS:
            for op in ops.values():
                op["security"] = [{"apiKey": []}]
                op.setdefault("responses", {})["401"] = {
                    "description": "missing or wrong API key",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
                }
