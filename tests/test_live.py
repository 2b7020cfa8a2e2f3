"""WS /live against a real Redis and a real live worker process (`python -m service live-worker`),
with JPEGs of real faces (London set, CC BY 4.0): labels as clips close, the decision, every way a
session can be refused or broken, and nothing left behind."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import threading
import time
import uuid

import cv2
import pytest
from conftest import LONDON, SMILER, make_settings, settings_env
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from service import live
from service.api import create_app
from service.embedded import EmbeddedRedis

pytestmark = pytest.mark.skipif(not (LONDON / "smiling").is_dir(), reason=f"the London set is not at {LONDON}")
TILE_AT = (200, 80)  # where the face tile is drawn in each 480x320 frame


def face_jpegs(n: int, photo: str = SMILER) -> list[bytes]:
    from videos import london_tile, people_frames

    tile = london_tile(photo, 170)
    frames = people_frames(n, [(tile, lambda i: (TILE_AT[0] + i % 3, TILE_AT[1]))], size=(480, 320))
    return [cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes() for f in frames]


def frame(jpeg: bytes, t: float) -> bytes:
    return struct.pack(">d", t) + jpeg


def start_live_worker(settings, **env) -> subprocess.Popen:
    """A real live worker; returns once it has registered (model loaded, self-check passed)."""
    import redis

    proc = subprocess.Popen(
        [sys.executable, "-m", "service", "live-worker"],
        env={**settings_env(settings), **env},
        stdout=subprocess.DEVNULL,
        stderr=open(os.environ.get("RAMFER_LIVE_LOG", os.devnull), "ab"),  # noqa: SIM115  the worker's, for its life
    )
    r = redis.Redis.from_url(settings.redis_url)
    deadline = time.monotonic() + 120
    while not live.live_worker_count(r, settings):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("the live worker did not register")
        time.sleep(0.2)
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def live_settings(redis_url, model_dir, tmp_path_factory):
    return make_settings(redis_url, tmp_path_factory.mktemp("live") / "storage", model_dir, live_sessions_per_worker=2)


@pytest.fixture(scope="module")
def live_worker(live_settings):
    proc = start_live_worker(live_settings, RAMFER_LIVE_SESSIONS_PER_WORKER="2")
    yield proc
    stop(proc)


@pytest.fixture(scope="module")
def jpegs() -> list[bytes]:
    return face_jpegs(60)


def app_client(settings, **overrides) -> TestClient:
    return TestClient(create_app(settings.model_copy(update=overrides)))


def live_keys(redis, settings) -> list[bytes]:
    return sorted(redis.keys(live.prefix(settings) + ":*"))


def start(ws, **extra) -> dict:
    ws.send_json({"type": "start", "fps": 15, **extra})
    return ws.receive_json()


def refused(ws, code: str, close: int) -> None:
    """The session's last words: an error message with `code`, then a close with `close`."""
    message = ws.receive_json()
    assert message["type"] == "error" and message["code"] == code, message
    assert message["message"]
    with pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_json()
    assert closed.value.code == close


def test_a_smile_streamed_as_frames_is_labelled_clip_by_clip_and_decided_happy(live_settings, live_worker, jpegs):
    import redis

    r = redis.Redis.from_url(live_settings.redis_url)
    with app_client(live_settings) as client, client.websocket_connect("/live") as ws:
        ready = start(ws)
        assert ready["type"] == "ready" and ready["limits"]["buffer_frames"] == live_settings.live_buffer_frames
        t0 = time.time()
        for i, jpeg in enumerate(jpegs[:40]):  # 15 fps, as a camera
            time.sleep(max(t0 + i / 15 - time.time(), 0))
            ws.send_bytes(frame(jpeg, 1000.0 + i / 15))
        ws.send_json({"type": "stop"})
        messages = []
        while (m := ws.receive_json())["type"] != "end":
            messages.append(m)
        end = m
    clips = [m for m in messages if m["type"] == "clip"]
    decisions = [m for m in messages if m["type"] == "decision"]
    assert end["frames_received"] == 40 and end["frames_analysed"] + end["dropped"] == 40
    assert len(clips) == 1 + (end["frames_analysed"] - 8) // 2 + (
        (end["frames_analysed"] - 8) % 2
    )  # clip_indices' count
    assert [c["clip"] for c in clips] == list(range(len(clips)))
    happy = sum(c["label"] == "happy" for c in clips)
    assert happy >= 0.6 * len(clips), [c["label"] for c in clips]
    assert decisions and decisions[-1]["expression"] == "happy"
    assert decisions[-1]["attention"] and len(decisions[-1]["attention"][0]) > 1
    box = clips[-1]["face"]
    assert (
        TILE_AT[0] < box["x"] + box["width"] / 2 < TILE_AT[0] + 170
        and TILE_AT[1] < box["y"] + box["height"] / 2 < TILE_AT[1] + 170
    )
    assert 1000.0 <= clips[0]["start_s"] < clips[0]["end_s"] <= clips[-1]["end_s"] <= 1000.0 + 40 / 15
    deadline = time.monotonic() + 5
    while (
        live_keys(r, live_settings) != [f"{live.prefix(live_settings)}:workers".encode()]
        and time.monotonic() < deadline
    ):
        time.sleep(0.1)
    assert live_keys(r, live_settings) == [f"{live.prefix(live_settings)}:workers".encode()]


def test_two_sessions_at_once_each_get_their_own_face_read(live_settings, live_worker, jpegs):
    """One worker serves both: the smiler's session is decided happy, the calm person's neutral."""
    from conftest import CALM

    calm = face_jpegs(40, CALM)
    with (
        app_client(live_settings) as client,
        client.websocket_connect("/live") as a,
        client.websocket_connect("/live") as b,
    ):
        assert start(a)["type"] == start(b)["type"] == "ready"
        t0 = time.time()
        for i in range(40):
            time.sleep(max(t0 + i / 10 - time.time(), 0))  # 10 fps each
            a.send_bytes(frame(jpegs[i], 50.0 + i / 10))
            b.send_bytes(frame(calm[i], 70.0 + i / 10))
        decided = {}
        for name, ws in (("smiler", a), ("calm", b)):
            ws.send_json({"type": "stop"})
            messages = []
            while (m := ws.receive_json())["type"] != "end":
                messages.append(m)
            clips = [m for m in messages if m["type"] == "clip"]
            assert clips and all(
                (50.0 if name == "smiler" else 70.0) <= c["start_s"] < c["end_s"] < (54.0 if name == "smiler" else 74.0)
                for c in clips
            )  # each session's own capture times: no clip crossed over
            decided[name] = [m for m in messages if m["type"] == "decision"][-1]["expression"]
    assert decided == {"smiler": "happy", "calm": "neutral"}


def test_frames_sent_faster_than_read_are_dropped_and_counted(live_settings, live_worker, jpegs):
    """60 frames at once: the worker reads at most live_buffer_frames at a time; the rest are dropped."""
    with app_client(live_settings) as client, client.websocket_connect("/live") as ws:
        start(ws)
        for i, jpeg in enumerate(jpegs):
            ws.send_bytes(frame(jpeg, i / 15))
        ws.send_json({"type": "stop"})
        while (m := ws.receive_json())["type"] != "end":
            pass
    assert m["frames_received"] == 60 and m["dropped"] > 0
    assert m["frames_analysed"] + m["dropped"] == 60


@pytest.mark.parametrize(
    "bad, code, close",
    [
        (b"not an image at all", "bad_frame", 4400),
        (struct.pack(">d", 1.0) + b"GIF89a" + b"\0" * 100, "bad_frame", 4400),
        (
            struct.pack(">d", 1.0) + b"\xff\xd8\xff" + b"\0" * 100,
            "bad_frame",
            4400,
        ),  # JPEG's magic, not a JPEG: the worker says so
        (struct.pack(">d", 1.0) + b"\xff\xd8\xff" + b"\0" * 600_000, "frame_too_large", 4413),
    ],
)
def test_a_frame_that_is_not_a_jpeg_or_too_large_closes_the_session_with_a_code(
    live_settings, live_worker, bad, code, close
):
    with app_client(live_settings) as client, client.websocket_connect("/live") as ws:
        ready = start(ws)
        assert ready["type"] == "ready", ready
        ws.send_bytes(bad)
        refused(ws, code, close)


def test_frames_out_of_order_and_bad_messages_are_refused(live_settings, live_worker, jpegs):
    with app_client(live_settings) as client:
        with client.websocket_connect("/live") as ws:
            start(ws)
            ws.send_bytes(frame(jpegs[0], 5.0))
            ws.send_bytes(frame(jpegs[1], 4.0))
            refused(ws, "frame_out_of_order", 4400)
        with client.websocket_connect("/live") as ws:
            ws.send_text("hello")
            refused(ws, "bad_message", 4400)
        with client.websocket_connect("/live") as ws:
            ws.send_json({"type": "start", "fps": 1000})
            refused(ws, "bad_message", 4400)
        with client.websocket_connect("/live") as ws:
            start(ws)
            ws.send_json({"type": "pause"})
            refused(ws, "bad_message", 4400)


def test_a_frame_of_another_size_is_refused(live_settings, live_worker, jpegs):
    small = cv2.imencode(
        ".jpg", cv2.resize(cv2.imdecode(__import__("numpy").frombuffer(jpegs[1], "uint8"), 1), (240, 160))
    )[1].tobytes()
    with app_client(live_settings) as client, client.websocket_connect("/live") as ws:
        start(ws)
        ws.send_bytes(frame(jpegs[0], 1.0))
        ws.send_bytes(frame(small, 2.0))
        refused(ws, "frame_size_changed", 4400)


def test_api_keys_are_checked_from_the_start_message_or_the_header(live_settings, live_worker):
    with app_client(live_settings, api_keys=["k1", "k2"]) as client:
        with client.websocket_connect("/live") as ws:
            ws.send_json({"type": "start", "fps": 15})
            refused(ws, "unauthorized", 4401)
        with client.websocket_connect("/live") as ws:
            ws.send_json({"type": "start", "fps": 15, "api_key": "wrong"})
            refused(ws, "unauthorized", 4401)
        with client.websocket_connect("/live") as ws:
            assert start(ws, api_key="k2")["type"] == "ready"
        with client.websocket_connect("/live", headers={"Authorization": "Bearer k1"}) as ws:
            assert start(ws)["type"] == "ready"
        assert client.get("/live").status_code == 401  # the route's description needs the key like the rest
        assert client.get("/live", headers={"Authorization": "Bearer k1"}).status_code == 426


def test_more_sessions_than_allowed_are_refused(live_settings, live_worker):
    with app_client(live_settings, live_max_sessions=1) as client:
        with client.websocket_connect("/live") as first:
            assert start(first)["type"] == "ready"
            with client.websocket_connect("/live") as second:
                start_msg = {"type": "start", "fps": 15}
                second.send_json(start_msg)
                refused(second, "too_many_sessions", 4429)
        with client.websocket_connect("/live") as again:  # the place is free once the first has gone
            assert start(again)["type"] == "ready"


def test_a_worker_full_of_sessions_refuses_one_more(live_settings, live_worker):
    with (
        app_client(live_settings, live_start_timeout_s=1.5) as client,
        client.websocket_connect("/live") as a,
        client.websocket_connect("/live") as b,
    ):
        assert start(a)["type"] == start(b)["type"] == "ready"  # the worker's 2
        with client.websocket_connect("/live") as c:
            c.send_json({"type": "start", "fps": 15})
            refused(c, "no_live_worker", 4503)


def test_no_live_worker_is_said_at_once(live_settings):
    with (
        app_client(live_settings, queue_name=f"test-{uuid.uuid4().hex[:8]}") as client,
        client.websocket_connect("/live") as ws,
    ):
        ws.send_json({"type": "start", "fps": 15})
        refused(ws, "no_live_worker", 4503)


def test_a_client_that_stops_sending_is_closed(live_settings, live_worker, jpegs):
    with app_client(live_settings, live_idle_timeout_s=0.5) as client:
        with client.websocket_connect("/live") as ws:
            refused(ws, "idle_timeout", 4408)  # no start message
        with client.websocket_connect("/live") as ws:
            start(ws)
            ws.send_bytes(frame(jpegs[0], 1.0))
            while (m := ws.receive_json())["type"] != "error":
                pass
            assert m["code"] == "idle_timeout"


def test_a_thousand_sessions_leave_no_key_and_no_thread(live_settings, live_worker, jpegs):
    import redis

    r = redis.Redis.from_url(live_settings.redis_url)
    with app_client(live_settings) as client:
        with client.websocket_connect("/live") as ws:  # the first opens the pools
            start(ws)
        threads = threading.active_count()
        start_time = time.monotonic()
        for i in range(1000):
            with client.websocket_connect("/live") as ws:
                assert start(ws)["type"] == "ready"
                if i % 100 == 0:
                    ws.send_bytes(frame(jpegs[0], 1.0))
                if i % 2:
                    ws.send_json({"type": "stop"})
                    while ws.receive_json()["type"] != "end":
                        pass
                # else: the client just leaves
        took = time.monotonic() - start_time
        assert threading.active_count() <= threads
    deadline = time.monotonic() + 10
    expected = [f"{live.prefix(live_settings)}:workers".encode()]
    while live_keys(r, live_settings) != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    assert live_keys(r, live_settings) == expected, live_keys(r, live_settings)[:10]
    print(f"1000 sessions in {took:.1f} s")


def test_a_long_session_keeps_only_what_clips_to_come_need(live_settings):
    """A camera may run for hours with people coming and going: what a session holds must not grow
    with its length. Run in this process (the worker's StreamAnalysis, the real model): a face in
    view for 40 frames, then gone for 40, three times over."""
    from pydantic import TypeAdapter
    from videos import london_tile, people_frames

    from service.live_worker import KEEP_FRAMES, StreamAnalysis
    from service.schemas import LiveServiceMessage
    from service.worker import load_predictor

    tile = london_tile(SMILER, 170)
    frames = people_frames(
        240, [(tile, lambda i: (TILE_AT[0] + i % 3, TILE_AT[1]) if i % 80 < 40 else None)], size=(480, 320)
    )
    session = StreamAnalysis("long", load_predictor(live_settings), live_settings, fps=15.0)
    messages, held = [], []
    for i, f in enumerate(frames):
        messages += session.add(i, 1000.0 + i / 15, cv2.imencode(".jpg", f)[1].tobytes())
        a = session.analysis
        held.append(
            (
                len(a.times.kept),
                len(a.tracker.tracks),
                len(a.people),
                max((len(p.boxes) + len(p.crops) + len(p.scorer.feats) for p in a.people.values()), default=0),
            )
        )
    messages += session.finish()
    # every message is one of the protocol's (service/schemas.py), field for field
    protocol = TypeAdapter(LiveServiceMessage)
    assert [protocol.validate_python(m).model_dump(mode="json") for m in messages] == messages
    clips = [m for m in messages if m["type"] == "clip"]
    # three people in turn, each read and told apart from the last (ids are not reused once a track is forgotten)
    assert sorted({c["person"] for c in clips}) == [1, 2, 3], [c["person"] for c in clips]
    assert all(c["start_s"] < c["end_s"] for c in clips)
    assert messages[-1]["type"] == "end" and messages[-1]["frames_analysed"] == 240
    times, tracks, people, per_person = (max(h[k] for h in held) for k in range(4))
    assert times <= KEEP_FRAMES + 1 and tracks <= 2 and people <= 2 and per_person <= 3 * KEEP_FRAMES, held[-1]
    assert len(session.recent) <= live_settings.live_window_s * 15 / 2 + 2


def test_redis_or_the_worker_gone_mid_session_closes_it_cleanly(model_dir, tmp_path, jpegs):
    """Redis stopped: the client is told (4503) and the worker lives on; Redis back (its append-only
    file brings the keys back): every key of the session has an expiry; the worker killed: the next
    session is told (4503 worker_lost) and its keys go."""
    server = EmbeddedRedis()
    url = server.start()
    settings = make_settings(url, tmp_path / "storage", model_dir, live_worker_grace_s=2.0)
    proc = start_live_worker(settings, RAMFER_LIVE_WORKER_GRACE_S="2")
    import redis

    try:
        with app_client(settings) as client:
            with client.websocket_connect("/live") as ws:
                sid = start(ws)["session"]
                ws.send_bytes(frame(jpegs[0], 1.0))
                time.sleep(1.5)  # the everysec append-only file has the session
                server.stop()
                refused(ws, "redis_unavailable", 4503)
            server.start()
            r = redis.Redis.from_url(url)
            for key in r.keys(live.prefix(settings) + ":*"):
                assert r.ttl(key) > 0, key  # nothing kept for ever
            deadline = time.monotonic() + 30
            while not live.live_worker_count(r, settings):  # the worker reconnects
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.2)
            with client.websocket_connect("/live") as ws:
                sid = start(ws)["session"]
                ws.send_bytes(frame(jpegs[0], 1.0))
                proc.kill()
                while (m := ws.receive_json())["type"] != "error":
                    pass
                assert m["code"] == "worker_lost"
            time.sleep(0.5)
            assert not r.exists(*live.session_keys(settings, sid))
            assert r.zscore(live.prefix(settings) + ":sessions", sid) is None
            proc = start_live_worker(
                settings, RAMFER_LIVE_WORKER_GRACE_S="30"
            )  # stopped, not killed: its client told at once
            with client.websocket_connect("/live") as ws:
                sid = start(ws)["session"]
                stopped_at = time.monotonic()
                proc.terminate()
                refused(ws, "worker_lost", 4503)
                assert time.monotonic() - stopped_at < 10
            assert proc.wait(15) is not None
            time.sleep(0.5)
            assert not r.exists(*live.session_keys(settings, sid))
    finally:
        stop(proc)
        server.cleanup()


def test_the_protocol_is_in_the_openapi_document(live_settings):
    with app_client(live_settings) as client:
        live_doc = client.get("/openapi.json").json()["paths"]["/live"]["get"]
        r = client.get("/live")
    assert "WebSocket" in live_doc["summary"] and all(
        code in live_doc["description"] for code in ("4401", "4429", "4503", '"stop"')
    )
    assert r.status_code == 426 and r.json()["error"]["code"] == "websocket_required"


def test_python_m_service_live_streams_a_video_file_as_a_camera_to_a_real_server(tmp_path, model_dir):
    """`python -m service live VIDEO --url URL` against `python -m service serve` (uvicorn serving the
    WebSocket with the websockets package): labels printed as they come, the smile decided happy."""
    import json

    from live_service import running_service
    from videos import london_tile, people_frames, write_video

    video = write_video(
        tmp_path / "smile.mp4", people_frames(45, [(london_tile(SMILER, 170), lambda i: (200 + i, 80))]), fps=15
    )
    env = {
        "RAMFER_STORAGE_DIR": str(tmp_path / "storage"),
        "RAMFER_MODEL_DIR": str(model_dir),
        "RAMFER_TORCH_THREADS": "1",
    }
    with running_service(env) as (url, _):
        deadline = time.monotonic() + 60
        while __import__("httpx").get(url + "/readyz").json().get("live_workers", 0) < 1:
            assert time.monotonic() < deadline
            time.sleep(0.3)
        run = subprocess.run(
            [sys.executable, "-m", "service", "live", str(video), "--url", url, "--json"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        plain = subprocess.run(
            [sys.executable, "-m", "service", "live", str(video), "--url", url, "--seconds", "1.5"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        missing = subprocess.run(
            [sys.executable, "-m", "service", "live", str(tmp_path / "nope.mp4"), "--url", url],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert run.returncode == 0, run.stderr[-2000:]
    messages = [json.loads(line) for line in run.stdout.splitlines()]
    assert messages[0]["type"] == "ready" and messages[-1]["type"] == "end"
    clips = [m for m in messages if m["type"] == "clip"]
    assert len(clips) >= 5 and sum(c["label"] == "happy" for c in clips) >= 0.6 * len(clips)
    assert [m for m in messages if m["type"] == "decision"][-1]["expression"] == "happy"
    assert plain.returncode == 0 and "clip    0" in plain.stdout and "== " in plain.stdout, (
        plain.stdout + plain.stderr[-1000:]
    )
    assert missing.returncode == 2 and "cannot open" in missing.stderr


def test_health_live_says_whether_this_host_has_a_live_worker(live_settings, live_worker):
    env = settings_env(live_settings)
    ok = subprocess.run(
        [sys.executable, "-m", "service", "health", "--live"], env=env, capture_output=True, text=True, timeout=60
    )
    other = subprocess.run(
        [sys.executable, "-m", "service", "health", "--live"],
        env={**env, "RAMFER_QUEUE_NAME": "nobody-serves-this"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert other.returncode != 0 and "no live worker" in other.stderr


def test_the_api_process_never_imports_torch_nor_the_pipeline():
    """The model stays in the workers: the app with its live route, built in a fresh interpreter."""
    code = (
        "import sys; from service.api import create_app; from service.settings import Settings; "
        "create_app(Settings(redis_url='redis://127.0.0.1:1/0')); "
        "print(sorted(m for m in ('torch', 'service.live_worker', 'service.worker') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-1000:]
    assert out.stdout.strip() == "[]"


def test_a_client_that_never_reads_is_closed_and_its_session_ends(live_settings, live_worker, jpegs, caplog):
    """A real server (uvicorn, in a thread) and a client whose socket is never read (a tiny receive
    buffer, the client library's queue of one): once the server's buffers are full its sends wait,
    and after LIVE_SEND_TIMEOUT_S the session is closed (`not_reading`) and its keys and place go."""
    import socket

    import redis
    import uvicorn
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    caplog.set_level("INFO", logger="service.live")
    settings = live_settings.model_copy(update={"live_send_timeout_s": 1.0, "live_idle_timeout_s": 60.0})
    listening = socket.socket()
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # inherited by the accepted socket: full sooner
    listening.bind(("127.0.0.1", 0))
    port = listening.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    r = redis.Redis.from_url(settings.redis_url)
    try:
        while not server.started:
            time.sleep(0.05)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        sock.connect(("127.0.0.1", port))
        ws = connect(f"ws://127.0.0.1:{port}/live", sock=sock, max_queue=1, compression=None).__enter__()
        ws.send('{"type": "start", "fps": 15}')
        sid = __import__("json").loads(ws.recv(30))["session"]
        sessions = live.prefix(settings) + ":sessions"
        assert r.zscore(sessions, sid) is not None
        t0, i = time.monotonic(), 0
        try:
            while r.zscore(sessions, sid) is not None and time.monotonic() - t0 < 150:
                ws.send(frame(jpegs[i % len(jpegs)], 1.0 + i / 15))  # a camera that keeps sending, never reading
                i += 1
                time.sleep(1 / 15)
        except ConnectionClosed:
            pass
        took = time.monotonic() - t0
        assert r.zscore(sessions, sid) is None, f"still open after {took:.0f} s"
        deadline = time.monotonic() + 10
        while r.exists(*live.session_keys(settings, sid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not r.exists(*live.session_keys(settings, sid))
        assert f"live session {sid} closed: not_reading" in caplog.text
        print(f"closed after {took:.1f} s, {i} frames sent")
        ws.close()
    finally:
        server.should_exit = True
        thread.join(10)
