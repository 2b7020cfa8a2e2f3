"""The API through FastAPI's TestClient, against a real Redis and real RQ workers (a worker
process, or an in-process worker in burst mode), on real video files."""

from __future__ import annotations

import re
import time

import pytest
from videos import astronaut_frames, write_video

PNG = b"\x89PNG\r\n\x1a\n"


def post(client, path, wait=0.0, field="file", name=None, content_type="video/mp4"):
    with open(path, "rb") as f:
        return client.post(f"/predict?wait={wait}", files={field: (name or path.name, f, content_type)})


def wait_for(client, job_id, statuses=("finished", "failed"), timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view = client.get(f"/jobs/{job_id}").json()
        if view["status"] in statuses:
            return view
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {view['status']} after {timeout} s")


# What no error message may show: a server path, an errno, FFmpeg's or Python's own wording.
INTERNALS = re.compile(r"(^|[\s'\"(])/[a-z]|\\|\.video\b|errno|invalid data|traceback|ffmpeg|pyav|exception", re.I)


def assert_error(response, status, code):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["message"]
    assert not INTERNALS.search(body["error"]["message"]), body["error"]["message"]


# --- the happy paths ----------------------------------------------------------------------


def test_predict_returns_the_full_result_within_wait_and_every_image_url_serves_a_png(client, worker, videos, settings):
    r = post(client, videos["astronaut_mp4"], wait=60)
    assert r.status_code == 200, r.text
    result = r.json()
    classes = client.get("/model").json()["classes"]
    assert result["expression"] in classes
    assert 0 < result["confidence"] <= 1
    assert sum(result["votes"].values()) == sum(c["face"] for c in result["clips"])
    assert result["video"] == {
        "frames": 40,
        "fps": 30.0,
        "duration_s": pytest.approx(40 / 30, abs=0.01),
        "width": 640,
        "height": 360,
        "rotation": 0,
        "mirrored": False,
    }
    assert result["faces"]["frames_with_face"] == 40
    starts = [c["start_frame"] for c in result["clips"]]
    assert starts == list(range(0, 33, 2))  # 8-frame clips at stride 2
    assert all(c["end_frame"] - c["start_frame"] == 7 for c in result["clips"])
    assert result["clips"][3]["start_s"] == pytest.approx(6 / 30, abs=1e-3)
    assert result["model"]["sha256"] == client.get("/model").json()["sha256"]
    assert {"decode", "detect", "infer", "render", "total"} <= set(result["timings_ms"])
    assert {m["name"] for m in result["attention_maps"]} == {"peak", "peak_clip", "peak_evidence"}
    # the answer holds what the OpenAPI document says it does, in its order
    assert list(result) == list(
        client.get("/openapi.json").json()["components"]["schemas"]["PredictResult"]["properties"]
    )
    for image in result["attention_maps"]:
        png = client.get(image["url"])
        assert png.status_code == 200 and png.headers["content-type"] == "image/png" and png.content.startswith(PNG)
    # the same job, read back
    view = client.get(f"/jobs/{result['job_id']}").json()
    assert view["status"] == "finished" and view["result"]["expression"] == result["expression"]
    assert (
        settings.uploads_dir / f"{result['job_id']}.video"
    ).exists()  # kept for the page's player, as long as its images


def test_a_video_of_two_people_answers_for_each_with_their_own_images(client, run_burst_worker, people_videos):
    r = post(client, people_videos["side"], wait=0)
    assert r.status_code == 202
    run_burst_worker()
    result = wait_for(client, r.json()["job_id"])["result"]
    assert result["faces"]["people"] == 2 and len(result["people"]) == 2
    by_x = sorted(result["people"], key=lambda p: p["box_at_peak"]["x"])
    assert [p["expression"] for p in by_x] == ["happy", "neutral"]  # the smiler on the left, the calm one on the right
    main = next(p for p in result["people"] if p["scored"])
    assert result["expression"] == main["expression"] and result["peak"] == main["peak"]
    for p in result["people"]:
        for image in p["attention_maps"] + [p["thumbnail"]]:
            png = client.get(image["url"])
            assert png.status_code == 200 and png.content.startswith(PNG), image
    for image in result["attention_maps"]:  # the main person's, under the names of one-person results
        assert (
            client.get(image["url"]).content
            == client.get(image["url"].replace("/peak", f"/person{main['id']}_peak")).content
        )


def test_predict_answers_202_then_the_job_can_be_followed(client, run_burst_worker, videos):
    r = post(client, videos["astronaut_mp4"], wait=0)
    assert r.status_code == 202
    job = r.json()
    assert r.headers["location"] == job["status_url"] and job["status_url"].endswith(f"/jobs/{job['job_id']}")
    assert client.get(f"/jobs/{job['job_id']}").json()["status"] == "queued"
    run_burst_worker()
    view = client.get(f"/jobs/{job['job_id']}").json()
    assert view["status"] == "finished" and view["error"] is None
    assert view["progress"]["stage"] == "done"
    assert len(view["result"]["clips"]) == 17


def test_a_finished_jobs_timeline_as_csv_holds_the_jsons_numbers(client, run_burst_worker, people_videos):
    from test_batch import assert_timeline_is_the_results, read_csv

    job = post(client, people_videos["side"], wait=0).json()["job_id"]
    assert_error(client.get(f"/jobs/{job}/timeline.csv"), 409, "job_not_finished")
    run_burst_worker()
    r = client.get(f"/jobs/{job}/timeline.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    result = client.get(f"/jobs/{job}").json()["result"]
    table = read_csv(r.text)
    assert {row["person"] for row in table} == {"1", "2"}  # a row per person per clip
    assert_timeline_is_the_results(table, result)
    assert_error(client.get(f"/jobs/{'0' * 32}/timeline.csv"), 404, "unknown_job")


def test_a_finished_jobs_video_is_served_in_the_ranges_a_player_asks_for(client, run_burst_worker, videos):
    job = post(client, videos["astronaut_mp4"], wait=0).json()["job_id"]
    run_burst_worker()
    whole = videos["astronaut_mp4"].read_bytes()
    r = client.get(f"/jobs/{job}/video")
    assert r.status_code == 200 and r.content == whole and r.headers["content-type"] == "video/mp4"
    assert r.headers["accept-ranges"] == "bytes" and int(r.headers["content-length"]) == len(whole)
    for asked, (start, end) in [
        ("bytes=100-199", (100, 199)),
        ("bytes=1000-", (1000, len(whole) - 1)),
        ("bytes=-50", (len(whole) - 50, len(whole) - 1)),
        (f"bytes=10-{10**9}", (10, len(whole) - 1)),
    ]:
        r = client.get(f"/jobs/{job}/video", headers={"Range": asked})
        assert r.status_code == 206 and r.content == whole[start : end + 1], asked
        assert r.headers["content-range"] == f"bytes {start}-{end}/{len(whole)}"
    r = client.get(f"/jobs/{job}/video", headers={"Range": f"bytes={len(whole)}-"})
    assert_error(r, 416, "range_not_satisfiable")
    assert r.headers["content-range"] == f"bytes */{len(whole)}"
    assert_error(client.get(f"/jobs/{'0' * 32}/video"), 404, "unknown_video")
    failed = post(client, videos["no_face"], wait=0).json()["job_id"]
    run_burst_worker()
    assert_error(client.get(f"/jobs/{failed}/video"), 404, "unknown_video")  # a failed job's video is not kept


def test_a_failed_jobs_timeline_is_a_409(client, run_burst_worker, videos):
    job = post(client, videos["no_face"], wait=0).json()["job_id"]
    run_burst_worker()
    assert_error(client.get(f"/jobs/{job}/timeline.csv"), 409, "job_failed")


@pytest.mark.parametrize(
    "kind",
    [
        "astronaut_webm",
        "astronaut_mkv",
        "astronaut_mov",
        "astronaut_avi",
        "astronaut_mpg",
        "astronaut_mpeg",
        "astronaut_ogg",
    ],
)
def test_common_containers_and_codecs(client, run_burst_worker, videos, kind):
    job_id = post(client, videos[kind]).json()["job_id"]
    run_burst_worker()
    view = client.get(f"/jobs/{job_id}").json()
    assert view["status"] == "finished", view
    assert view["result"]["video"]["frames"] == 20
    assert view["result"]["faces"]["frames_with_face"] == 20


@pytest.mark.parametrize("kind,frames", [("one_frame", 1), ("five_frames", 5)])
def test_videos_shorter_than_a_clip_make_one_padded_clip(client, run_burst_worker, videos, kind, frames):
    job_id = post(client, videos[kind]).json()["job_id"]
    run_burst_worker()
    result = client.get(f"/jobs/{job_id}").json()["result"]
    assert len(result["clips"]) == 1
    assert result["clips"][0]["start_frame"] == 0 and result["clips"][0]["end_frame"] == frames - 1
    assert result["video"]["frames"] == frames


# --- bad input ----------------------------------------------------------------------------


def test_empty_file(client, tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    assert_error(post(client, empty), 422, "empty_file")


def test_text_renamed_mp4(client, tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    r = post(client, text)
    assert_error(r, 415, "unsupported_format")
    assert "MPEG-PS" in r.json()["error"]["message"] and "Ogg" in r.json()["error"]["message"]


def test_truncated_mp4_without_its_index(client, videos, tmp_path, settings):
    data = videos["astronaut_mp4"].read_bytes()  # moov (the index) at the end: cut it off
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    r = post(client, cut)
    assert_error(r, 422, "unreadable_video")
    message = r.json()["error"]["message"]
    # says what is wrong with the video, in our words: FFmpeg's named the upload's path on the server
    assert "MP4" in message and "damaged or cut off" in message
    assert "/" not in message.replace("MP4/MOV", "") and str(settings.storage_dir) not in message
    assert "Errno" not in message and "Invalid data" not in message


@pytest.mark.parametrize("kind", ["astronaut_mpg", "astronaut_ogg", "astronaut_mkv"])
def test_truncated_headers_of_other_containers_say_so_in_our_words(client, videos, tmp_path, kind):
    cut = tmp_path / f"cut{videos[kind].suffix}"
    cut.write_bytes(videos[kind].read_bytes()[:40])  # the signature, then nothing usable
    r = post(client, cut)
    assert r.status_code in (415, 422), r.text
    assert_error(r, r.status_code, r.json()["error"]["code"])


def test_truncated_faststart_mp4_analyses_what_it_holds(client, run_burst_worker, tmp_path):
    import av

    path = tmp_path / "fast.mp4"
    frames = astronaut_frames(40)
    with av.open(str(path), "w", options={"movflags": "faststart"}) as out:
        s = out.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = 640, 360, "yuv420p"
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="bgr24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    data = path.read_bytes()
    cut = tmp_path / "fast_cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    r = post(client, cut)
    assert r.status_code == 202
    run_burst_worker()
    view = client.get(f"/jobs/{r.json()['job_id']}").json()
    assert view["status"] == "finished", view
    assert 0 < view["result"]["video"]["frames"] < 40


def test_video_with_no_decodable_frames_fails_its_job_with_a_message(client, run_burst_worker, videos, tmp_path):
    data = bytearray(videos["astronaut_mp4"].read_bytes())
    start = data.index(b"mdat") + 4
    data[start : start + (len(data) - start) // 2] = bytes((len(data) - start) // 2)  # zero the coded frames
    broken = tmp_path / "garbage.mp4"
    broken.write_bytes(bytes(data))
    r = post(client, broken)
    assert r.status_code == 202  # the headers are intact: only decoding can tell
    run_burst_worker()
    view = client.get(f"/jobs/{r.json()['job_id']}").json()
    assert view["status"] == "failed"
    assert view["error"]["code"] == "undecodable_video" and "decoded" in view["error"]["message"]
    assert not INTERNALS.search(view["error"]["message"]), view["error"]["message"]


def test_video_without_a_face_is_a_clear_error_not_a_guess(client, worker, videos):
    assert_error(post(client, videos["no_face"], wait=60), 422, "no_face")


def test_huge_resolution_is_refused_before_decoding(client, tmp_path):
    import numpy as np

    big = write_video(tmp_path / "big.avi", [np.full((3000, 4000), 128, np.uint8)] * 2, codec="mjpeg")
    assert_error(post(client, big), 413, "resolution_too_large")


def test_negative_wait_is_a_validation_error(client, videos):
    assert_error(post(client, videos["five_frames"], wait=-1), 422, "invalid_request")


def test_unknown_job_and_image(client):
    assert_error(client.get("/jobs/" + "0" * 32), 404, "unknown_job")
    assert_error(client.get("/jobs/not-a-job-id"), 404, "unknown_job")
    assert_error(client.get("/jobs/" + "0" * 32 + "/attention/peak.png"), 404, "unknown_image")
    assert client.get("/jobs/" + "0" * 32 + "/attention/..%2F..%2Fetc%2Fpasswd.png").status_code == 404


def test_unknown_route_is_json(client):
    assert_error(client.get("/nope"), 404, "not_found")


# --- faults ---------------------------------------------------------------------------------


def test_redis_down_is_503_and_the_api_stays_up(tmp_path, model_dir, videos):
    from conftest import make_settings
    from fastapi.testclient import TestClient

    from service.api import create_app

    settings = make_settings("redis://127.0.0.1:1/0", tmp_path / "s", model_dir)  # nothing listens on port 1
    with TestClient(create_app(settings)) as client:
        assert_error(post(client, videos["five_frames"]), 503, "queue_unavailable")
        assert_error(client.get("/jobs/" + "a" * 32), 503, "queue_unavailable")
        assert_error(client.get("/readyz"), 503, "queue_unavailable")
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/model").status_code == 200
        assert "ramfer_redis_up 0.0" in client.get("/metrics").text
    assert not settings.uploads_dir.exists() or list(settings.uploads_dir.glob("*")) == []


# --- the other routes -------------------------------------------------------------------------


def test_model_metadata(client, model_dir):
    import json

    m = client.get("/model").json()
    config = json.loads((model_dir / "config.json").read_text())
    assert m["variant"] == config["model"]["variant"] == "econvlstm_ram"
    assert m["sha256"] == config["weights_sha256"]
    assert m["clip_length"] == 8 and m["stride"] == 2 and m["input_size"] == 48
    assert "happy" in m["classes"]
    assert (
        m["name"] == config["name"] and m["decision"]["neutral_bias"] == config["decision"]["neutral_bias"]
    )  # which is served, decided how


def test_readyz_needs_a_live_worker(client, settings):
    from conftest import start_worker

    assert_error(client.get("/readyz"), 503, "no_workers")
    proc = start_worker(settings)
    try:
        r = client.get("/readyz")
        assert r.status_code == 200 and r.json()["workers"] == 1
    finally:
        proc.terminate()
        proc.wait(10)


def test_metrics_count_requests_and_queue(client, videos):
    post(client, videos["five_frames"])
    client.get("/jobs/" + "0" * 32)
    text = client.get("/metrics").text
    assert 'ramfer_http_requests_total{method="POST",route="/predict",status="202"} 1.0' in text
    assert 'ramfer_http_requests_total{method="GET",route="/jobs/{job_id}",status="404"} 1.0' in text
    assert "ramfer_queue_depth 1.0" in text
    assert "ramfer_jobs_submitted_total 1.0" in text
    assert "ramfer_job_duration_seconds_bucket" in text


def test_index_page(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert 'id="upload-form"' in r.text and "predict?wait=0" in r.text


def test_openapi_documents_every_route_and_its_errors(client):
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/predict",
        "/jobs/{job_id}",
        "/jobs/{job_id}/attention/{name}.png",
        "/model",
        "/healthz",
        "/readyz",
        "/metrics",
    ):
        assert path in paths
    predict = paths["/predict"]["post"]
    assert {"200", "202", "413", "415", "422", "503"} <= set(predict["responses"])
    assert "multipart/form-data" in predict["requestBody"]["content"]
    assert "404" in paths["/jobs/{job_id}"]["get"]["responses"]
    assert {"200", "404", "409"} <= set(paths["/jobs/{job_id}/timeline.csv"]["get"]["responses"])
    person = spec["components"]["schemas"]["Person"]["properties"]
    assert "track" in person and set(spec["components"]["schemas"]["Track"]["properties"]) == {"t", "x", "y", "w", "h"}
    video = spec["components"]["schemas"]["VideoMeta"]["properties"]
    assert {"rotation", "mirrored"} <= set(video)


def test_the_openapi_document_is_made_from_the_result_and_live_models(client):
    """The result's routes, and the live stream's messages, name exactly the fields of service/schemas.py's
    models, in their order: the document, the code and the client cannot say different things."""
    from service import schemas

    spec = client.get("/openapi.json").json()
    components = spec["components"]["schemas"]

    def answer(path, method="get"):
        return spec["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]

    assert answer("/jobs/{job_id}") == "#/components/schemas/JobView"
    assert answer("/predict", "post") == "#/components/schemas/PredictResult"
    assert {"$ref": "#/components/schemas/Result"} in components["JobView"]["properties"]["result"]["anyOf"]
    models = [
        schemas.Result,
        schemas.PredictResult,
        schemas.JobView,
        schemas.Person,
        schemas.Clip,
        schemas.Segment,
        schemas.Peak,
        schemas.AttentionMap,
        schemas.Image,
        schemas.VideoMeta,
        schemas.FaceStats,
        schemas.Box,
        schemas.Track,
        schemas.ModelRef,
        schemas.Decision,
        schemas.ErrorBody,
        schemas.ErrorDetail,
    ]
    for side, messages in schemas.LIVE_MESSAGES.items():
        listed = spec["paths"]["/live"]["get"]["x-websocket-messages"][side]["oneOf"]
        assert listed == [{"$ref": f"#/components/schemas/{m.__name__}"} for m in messages]
        models += messages
    for model in models:
        assert list(components[model.__name__]["properties"]) == list(model.model_fields), model.__name__
    classes = client.get("/model").json()["classes"]
    assert components["Result"]["properties"]["expression"]["enum"] == classes
    assert components["LiveDecision"]["properties"]["expression"]["enum"] == classes


def test_docs_pages_load_their_scripts_and_styles_from_this_server(client):
    """/docs and /redoc work air-gapped: every script, style and icon they name is served here."""
    types = {".js": "javascript", ".css": "text/css", ".png": "image/png"}
    for page in ("/docs", "/redoc"):
        html = client.get(page)
        assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
        urls = re.findall(r'<(?:script|link)\b[^>]*\b(?:src|href)="([^"]+)"', html.text)
        assert any(u.endswith(".js") for u in urls), urls
        for url in urls:
            assert url.startswith("/docs/static/"), url  # this server, not a CDN
            r = client.get(url)
            assert r.status_code == 200, url
            assert types[url[url.rindex(".") :]] in r.headers["content-type"], (url, r.headers["content-type"])
            if url.endswith(".js"):
                assert len(r.content) > 100_000  # the real bundle, not a stub
    assert "cdn" not in client.get("/docs").text.lower()


def test_openapi_names_the_classes_of_the_served_checkpoint(client, redis_url, tmp_path):
    from conftest import make_settings
    from fastapi.testclient import TestClient

    from service.api import create_app
    from service.settings import DEFAULT_MODEL_DIR

    def described(spec):
        return spec["info"]["description"], spec["components"]["schemas"]["Result"]["properties"]["expression"]

    classes = client.get("/model").json()["classes"]
    assert len(classes) == 8 and "neutral" in classes
    info, expression = described(client.get("/openapi.json").json())
    assert "8 classes" in info and "7 CK+" not in info
    assert all(c in info for c in classes) and expression["enum"] == classes
    seven = make_settings(redis_url, tmp_path / "s7", DEFAULT_MODEL_DIR.parent / "synthetic-7class")
    with TestClient(create_app(seven)) as c7:
        info, expression = described(c7.get("/openapi.json").json())
        assert "7 classes" in info and "neutral" not in info and len(expression["enum"]) == 7
        assert expression["enum"] == c7.get("/model").json()["classes"]
