"""Receiving an upload: the multipart body is parsed as it streams in and the "file" field is
written straight to its destination, never more than the cap.

Starlette's own form parsing spools every file to a temporary file before the route sees it,
so a 10 GB upload would be written to disk before it could be refused. Here the Content-Length
(when sent) is checked before anything is read, and the byte count while reading; past the
cap the partial file is deleted and the request answered 413.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

FIELD = "file"
OVERHEAD = 64 * 1024  # room for the multipart framing and other small fields


class UploadError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Upload:
    filename: str  # as the client named it; reported, never used in a path
    size: int


async def receive_upload(request: Request, dest: Path, max_bytes: int) -> Upload:
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in params:
        raise UploadError(415, "not_multipart", f"Send the video as multipart/form-data in a field named '{FIELD}'.")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes + OVERHEAD:
        raise UploadError(413, "upload_too_large", too_large(max_bytes))

    state = {"name": None, "filename": None, "size": 0, "seen": [], "header": b"", "value": b"", "headers": {}}
    dest.parent.mkdir(parents=True, exist_ok=True)
    out = None

    def on_part_begin():
        state["headers"] = {}

    def on_header_field(data, start, end):
        state["header"] += data[start:end]

    def on_header_value(data, start, end):
        state["value"] += data[start:end]

    def on_header_end():
        state["headers"][state["header"].lower()] = state["value"]
        state["header"] = state["value"] = b""

    def on_headers_finished():
        nonlocal out
        _, disp = parse_options_header(state["headers"].get(b"content-disposition", b""))
        state["name"] = disp.get(b"name", b"").decode("utf-8", "replace")
        state["seen"].append(state["name"])
        if state["name"] == FIELD and out is None:
            state["filename"] = disp.get(b"filename", b"").decode("utf-8", "replace")
            out = open(dest, "wb")

    def on_part_data(data, start, end):
        if state["name"] != FIELD or out is None or out.closed:
            return
        chunk = data[start:end]
        if state["size"] + len(chunk) > max_bytes:
            raise UploadError(413, "upload_too_large", too_large(max_bytes))
        out.write(chunk)
        state["size"] += len(chunk)

    def on_part_end():
        if state["name"] == FIELD and out is not None:
            out.close()

    parser = MultipartParser(
        params[b"boundary"],
        {
            "on_part_begin": on_part_begin, "on_header_field": on_header_field, "on_header_value": on_header_value,
            "on_header_end": on_header_end, "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data, "on_part_end": on_part_end,
        },
    )
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except UploadError:
        _discard(out, dest)
        raise
    except Exception as e:  # malformed multipart, client gone
        _discard(out, dest)
        # the parser's own wording stays in the chained exception (the server's log), not the answer
        raise UploadError(400, "bad_upload", "The upload could not be read as multipart/form-data.") from e
    if out is None:
        seen = ", ".join(f"'{n}'" for n in state["seen"]) or "none"
        raise UploadError(422, "missing_file_field", f"No form field named '{FIELD}' (fields sent: {seen}).")
    if not out.closed:  # the body ended inside the file part
        _discard(out, dest)
        raise UploadError(400, "bad_upload", "The upload ended before the file did.")
    return Upload(state["filename"] or "", state["size"])


def too_large(max_bytes: int) -> str:
    return f"The upload is larger than this service accepts ({max_bytes / 2**20:.0f} MB)."


def _discard(out, dest: Path) -> None:
    if out is not None and not out.closed:
        out.close()
    dest.unlink(missing_ok=True)
