"""The page: the browser's upload and Live views, one file (service/static/index.html) served at /."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

STATIC = Path(__file__).parent / "static"
router = APIRouter()


@router.get("/", response_class=FileResponse, include_in_schema=False)
def index():
    return FileResponse(STATIC / "index.html", media_type="text/html")
