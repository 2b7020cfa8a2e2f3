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

    dest.parent.mkdir(parents=True, exist_ok=True)
    field = FileField(dest, max_bytes)
    parser = MultipartParser(params[b"boundary"], field.callbacks())
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except UploadError:
        _discard(field.out, dest)
        raise
    except Exception as e:  # malformed multipart, client gone
        _discard(field.out, dest)
        # the parser's own wording stays in the chained exception (the server's log), not the answer
        raise UploadError(400, "bad_upload", "The upload could not be read as multipart/form-data.") from e
    if field.out is None:
        seen = ", ".join(f"'{n}'" for n in field.seen) or "none"
        raise UploadError(422, "missing_file_field", f"No form field named '{FIELD}' (fields sent: {seen}).")
    if not field.out.closed:  # the body ended inside the file part
        _discard(field.out, dest)
        raise UploadError(400, "bad_upload", "The upload ended before the file did.")
    return Upload(field.filename or "", field.size)


class FileField:
    """The multipart parser's callbacks: each part's headers read, and the first part named FIELD
    written to `dest` as its bytes come, never more than `max_bytes` (UploadError 413 past them)."""

    def __init__(self, dest: Path, max_bytes: int):
        self.dest, self.max_bytes = dest, max_bytes
        self.name: str | None = None  # the current part's field name
        self.filename: str | None = None
        self.size = 0
        self.seen: list[str] = []  # every part's field name, for the error when FIELD is missing
        self.header, self.value, self.headers = b"", b"", {}
        self.out = None  # the file being written, once FIELD's part has begun

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
        }

    def on_part_begin(self):
        self.headers = {}

    def on_header_field(self, data, start, end):
        self.header += data[start:end]

    def on_header_value(self, data, start, end):
        self.value += data[start:end]

    def on_header_end(self):
        self.headers[self.header.lower()] = self.value
        self.header = self.value = b""

    def on_headers_finished(self):
        _, disp = parse_options_header(self.headers.get(b"content-disposition", b""))
        self.name = disp.get(b"name", b"").decode("utf-8", "replace")
        self.seen.append(self.name)
        if self.name == FIELD and self.out is None:
            self.filename = disp.get(b"filename", b"").decode("utf-8", "replace")
            self.out = open(self.dest, "wb")  # noqa: SIM115  written part by part, closed when the upload ends

    def on_part_data(self, data, start, end):
        if self.name != FIELD or self.out is None or self.out.closed:
            return
        chunk = data[start:end]
        if self.size + len(chunk) > self.max_bytes:
            raise UploadError(413, "upload_too_large", too_large(self.max_bytes))
        self.out.write(chunk)
        self.size += len(chunk)

    def on_part_end(self):
        if self.name == FIELD and self.out is not None:
            self.out.close()


def too_large(max_bytes: int) -> str:
    return f"The upload is larger than this service accepts ({max_bytes / 2**20:.0f} MB)."


def _discard(out, dest: Path) -> None:
    if out is not None and not out.closed:
        out.close()
    dest.unlink(missing_ok=True)
