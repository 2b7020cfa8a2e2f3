"""Receiving an upload (service/upload.py), through POST /predict: the multipart body parsed as it
streams in, refused past the size cap (declared or streamed) with nothing kept, and refused when it is
not multipart or has no "file" field."""

from __future__ import annotations

from test_api import assert_error, post


def test_upload_over_the_cap_declared(client, settings, tmp_path):
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * (settings.max_upload_bytes + 200_000))
    assert_error(post(client, big), 413, "upload_too_large")
    assert not any(settings.uploads_dir.glob("*")) if settings.uploads_dir.exists() else True


def test_upload_over_the_cap_streamed_writes_nothing_beyond_it(redis_url, tmp_path, model_dir):
    """Chunked upload without Content-Length: cut off at the cap while streaming."""
    from conftest import make_settings
    from fastapi.testclient import TestClient

    from service.api import create_app

    settings = make_settings(redis_url, tmp_path / "s", model_dir, max_upload_mb=1)
    boundary = "xyzBOUNDARYzyx"
    written = []

    def body():
        yield f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"\r\nContent-Type: video/mp4\r\n\r\n'.encode()
        for _ in range(40):  # 40 x 64 KB = 2.5 MB, over the 1 MB cap
            written.append(1)
            yield b"\0" * 65536
        yield f"\r\n--{boundary}--\r\n".encode()

    with TestClient(create_app(settings)) as client:
        r = client.post(
            "/predict", content=body(), headers={"content-type": f"multipart/form-data; boundary={boundary}"}
        )
    assert_error(r, 413, "upload_too_large")
    assert list(settings.uploads_dir.glob("*")) == []


def test_wrong_form_field(client, videos):
    assert_error(post(client, videos["five_frames"], field="video"), 422, "missing_file_field")


def test_not_multipart(client):
    assert_error(
        client.post("/predict", content=b"raw bytes", headers={"content-type": "video/mp4"}), 415, "not_multipart"
    )
