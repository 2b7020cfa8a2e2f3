"""Live sessions as the API sees them: a WebSocket's frames into Redis, a live worker's results
back out. The API never decodes a frame nor imports torch; the worker (service/live_worker.py)
runs the same pipeline as uploads on them (service.analysis.Analysis). The protocol's messages are
the models of service/schemas.py (LiveStart, LiveReady, ..., LiveError; docs/api.md, "Live").

Redis keys (P = "ramfer:live:<queue_name>"), every one with an expiry, so a crash of any party
leaves nothing for ever:

    P:sessions        ZSET  session id -> lease deadline (unix s): the bound on sessions at once
    P:workers         ZSET  live worker name -> heartbeat deadline
    P:waiting         LIST  sessions waiting for a worker with room
    P:s:<id>:in       STREAM  frames (seq, t, jpeg), trimmed to live_buffer_frames: the oldest dropped
    P:s:<id>:out      STREAM  messages for the client (JSON), written by the worker
    P:s:<id>:worker   STRING  the worker serving the session, refreshed each of its loops
    P:s:<id>:ctl      HASH    set by the API: the session's fps, and stop=stop once the client asked to finish
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import secrets
import struct
import time

import anyio
import redis.asyncio as aioredis
from pydantic import BaseModel, ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError, TimeoutError as RedisTimeoutError
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from service.schemas import LiveError, LiveLimits, LiveReady, LiveStart, LiveStop
from service.settings import Settings

log = logging.getLogger(__name__)

HEADER = struct.Struct(">d")  # a binary frame: its capture time (float64, big-endian, seconds), then the JPEG
JPEG_MAGIC = b"\xff\xd8\xff"
OUT_TTL_S = 60  # results nobody reads are gone after this long

# Close codes: 4000 + the HTTP status that means the same.
CLOSE = {
    "bad_message": 4400,
    "bad_frame": 4400,
    "frame_out_of_order": 4400,
    "frame_size_changed": 4400,
    "unauthorized": 4401,
    "idle_timeout": 4408,
    "not_reading": 4408,
    "frame_too_large": 4413,
    "resolution_too_large": 4413,
    "too_many_sessions": 4429,
    "no_live_worker": 4503,
    "worker_lost": 4503,
    "redis_unavailable": 4503,
    "internal_error": 4500,
}


def prefix(settings: Settings) -> str:
    return f"ramfer:live:{settings.queue_name}"


def session_key(settings: Settings, sid: str, part: str) -> str:
    return f"{prefix(settings)}:s:{sid}:{part}"


def session_keys(settings: Settings, sid: str) -> list[str]:
    return [session_key(settings, sid, part) for part in ("in", "out", "worker", "ctl")]


# Atomically: forget expired leases, then take a place if one is free.
TAKE_PLACE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


BAD_START = (
    'The first message must be the JSON {"type": "start", "fps": 15} (with "api_key" when the service needs one).'
)


class Refused(Exception):
    """A session ends with an error: `code` (a key of CLOSE) and a message for the client."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def start_message(start: dict) -> LiveStart:
    """The client's first message as the protocol has it (LiveStart), or Refused saying what is wrong."""
    try:
        return LiveStart.model_validate(start)
    except ValidationError as e:
        if any(error["loc"][:1] == ("fps",) for error in e.errors()):
            raise Refused(
                "bad_message", '"fps" must be a number from 1 to 60 (the rate frames will be sent at).'
            ) from None
        raise Refused("bad_message", BAD_START) from None


def parsed(model: type[BaseModel], text: str | None) -> BaseModel | None:
    """A text message as the protocol message `model` describes, or None (not JSON, or not that message)."""
    try:
        return model.model_validate(json.loads(text or ""))
    except ValueError:  # pydantic's ValidationError among them
        return None


def connect(settings: Settings) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        settings.redis_url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=15
    )


def live_worker_count(sync_redis, settings: Settings) -> int:
    return sync_redis.zcount(f"{prefix(settings)}:workers", time.time(), "+inf")


async def run_session(ws: WebSocket, settings: Settings, redis: aioredis.Redis, key_is_valid) -> None:
    """One WebSocket from accept to close. Every way it ends closes the socket with a code and,
    for an error, an {"type": "error", "code", "message"} message first; the session's keys go."""
    await ws.accept()
    sid = secrets.token_hex(12)
    session = Session(ws, settings, redis, sid)
    try:
        start = await session.first_message()
        if settings.api_keys:
            header = ws.headers.get("authorization") or f"Bearer {start.get('api_key') or ''}"
            if not key_is_valid(header, settings.api_keys):
                raise Refused(
                    "unauthorized",
                    "This service needs an API key: send it as the start message's "
                    "\"api_key\" (or as 'Authorization: Bearer <key>').",
                )
        await session.open(start)
        await session.run()
    except Refused as e:
        log.info("live session %s closed: %s", sid, e.code)
        await session.close_with(e.code, e.message)
    except (RedisConnectionError, RedisTimeoutError, OSError) as e:
        log.warning("live session %s: Redis unavailable: %s", sid, e)
        await session.close_with(
            "redis_unavailable",
            "Redis, which carries the frames to the model, cannot be reached; "
            "the session is closed. Try again shortly.",
        )
    except WebSocketDisconnect:
        pass
    except Exception:
        log.exception("live session %s failed", sid)
        await session.close_with("internal_error", "Internal error; it has been logged.")
    finally:
        await session.cleanup()


class Session:
    def __init__(self, ws: WebSocket, settings: Settings, redis: aioredis.Redis, sid: str):
        self.ws, self.settings, self.redis, self.sid = ws, settings, redis, sid
        self.placed = False
        self.seq = 0
        self.last_t = -math.inf
        self.stopping = False

    def key(self, part: str) -> str:
        return session_key(self.settings, self.sid, part)

    async def first_message(self) -> dict:
        try:
            msg = await asyncio.wait_for(self.ws.receive(), self.settings.live_idle_timeout_s)
        except asyncio.TimeoutError:
            raise Refused("idle_timeout", f"No start message within {self.settings.live_idle_timeout_s:g} s.") from None
        if msg["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(msg.get("code", 1000))
        try:
            start = json.loads(msg.get("text") or "")
            assert isinstance(start, dict) and start.get("type") == "start"
        except (ValueError, AssertionError):
            raise Refused("bad_message", BAD_START) from None
        return start

    async def open(self, start: dict) -> None:
        """A place among live_max_sessions, then a live worker with room within live_start_timeout_s."""
        s, p = self.settings, prefix(self.settings)
        fps = start_message(start).fps
        now = time.time()
        lease = now + 3 * s.live_worker_grace_s + s.live_idle_timeout_s
        took = await self.redis.eval(
            TAKE_PLACE, 1, f"{p}:sessions", now, s.live_max_sessions, lease, self.sid, int(lease - now) + 60
        )
        if not took:
            raise Refused(
                "too_many_sessions",
                f"This service holds at most {s.live_max_sessions} live sessions at once; try again later.",
            )
        self.placed = True
        if not await self.redis.zcount(f"{p}:workers", now, "+inf"):
            raise Refused("no_live_worker", "No live worker is running: live sessions cannot be served now.")
        await self.redis.hset(self.key("ctl"), mapping={"fps": float(fps)})  # the worker reads the session's rate here
        await self.redis.expire(self.key("ctl"), int(lease - now) + 60)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.rpush(f"{p}:waiting", self.sid)
            pipe.expire(f"{p}:waiting", int(s.live_start_timeout_s) + 60)
            await pipe.execute()
        deadline = time.monotonic() + s.live_start_timeout_s
        while not await self.redis.exists(self.key("worker")):
            if time.monotonic() > deadline:
                raise Refused(
                    "no_live_worker",
                    f"Every live worker is busy (at most {s.live_sessions_per_worker} sessions each); try again later.",
                )
            await asyncio.sleep(0.02)
        await self.send(
            LiveReady(
                session=self.sid,
                fps=fps,
                limits=LiveLimits(
                    max_frame_bytes=s.live_max_frame_bytes,
                    buffer_frames=s.live_buffer_frames,
                    idle_timeout_s=s.live_idle_timeout_s,
                    decide_every_clips=s.live_decide_every_clips,
                    window_s=s.live_window_s,
                ),
            )
        )

    async def run(self) -> None:
        """Frames in and results out at once, until the worker's "end" (after a stop), or an error."""
        receiving = asyncio.create_task(self.receive_frames())
        forwarding = asyncio.create_task(self.forward_results())
        try:
            done, _ = await asyncio.wait({receiving, forwarding}, return_when=asyncio.FIRST_COMPLETED)
            if receiving in done:
                receiving.result()  # raises Refused, WebSocketDisconnect, a Redis error
                await forwarding  # after a stop: the last clips, the final decision, "end"
            else:
                forwarding.result()
        finally:
            for task in (receiving, forwarding):
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task

    async def receive_frames(self) -> None:
        s = self.settings
        while True:
            try:
                msg = await asyncio.wait_for(self.ws.receive(), s.live_idle_timeout_s)
            except asyncio.TimeoutError:
                raise Refused(
                    "idle_timeout", f"No frame for {s.live_idle_timeout_s:g} s: the session is closed."
                ) from None
            if msg["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(msg.get("code", 1000))
            if msg.get("bytes") is not None:
                await self.add_frame(msg["bytes"])
                continue
            if parsed(LiveStop, msg.get("text")) is not None:
                self.stopping = True
                await self.redis.hset(self.key("ctl"), "stop", "stop")
                return
            raise Refused("bad_message", 'Text messages after "start" can only be {"type": "stop"}; frames are binary.')

    async def add_frame(self, data: bytes) -> None:
        s = self.settings
        if len(data) > s.live_max_frame_bytes:
            raise Refused(
                "frame_too_large",
                f"A frame of {len(data):,} bytes; this service accepts up to {s.live_max_frame_bytes:,}.",
            )
        if len(data) <= HEADER.size + len(JPEG_MAGIC) or not data[HEADER.size :].startswith(JPEG_MAGIC):
            raise Refused(
                "bad_frame",
                "A frame is 8 bytes of capture time (float64, big-endian, seconds) followed by a JPEG image.",
            )
        (t,) = HEADER.unpack_from(data)
        if not math.isfinite(t) or t <= self.last_t:
            raise Refused(
                "frame_out_of_order",
                f"Frame {self.seq} was captured at {t} s, not after the frame before ({self.last_t} s).",
            )
        self.last_t = t
        async with self.redis.pipeline(transaction=False) as pipe:
            # MAXLEN: what the worker has not read yet is at most live_buffer_frames; older frames are dropped
            pipe.xadd(
                self.key("in"),
                {"seq": self.seq, "t": repr(t), "jpeg": data[HEADER.size :]},
                maxlen=s.live_buffer_frames,
                approximate=False,
            )
            pipe.expire(self.key("in"), int(s.live_idle_timeout_s + s.live_worker_grace_s) + 5)
            await pipe.execute()
        self.seq += 1

    async def forward_results(self) -> None:
        s, last, out = self.settings, "0-0", self.key("out")
        while True:
            replies = await self.redis.xread({out: last}, count=100, block=500)
            for _, entries in replies or []:
                for entry_id, fields in entries:
                    last = entry_id.decode()
                    message = json.loads(fields[b"m"])
                    if message["type"] == "error":
                        raise Refused(message["code"], message["message"])
                    await self.send(message)
                    if message["type"] == "end":
                        await self.ws.close(1000)
                        return
            now = time.time()
            # the worker deletes its key as it posts "end": a message after `last` means it is not lost
            if not await self.redis.exists(self.key("worker")) and not await self.redis.xrange(
                out, f"({last}", "+", count=1
            ):
                raise Refused(
                    "worker_lost",
                    "The live worker serving this session stopped; the session is closed. Open a new one.",
                )
            lease = now + 3 * s.live_worker_grace_s + s.live_idle_timeout_s
            await self.redis.zadd(f"{prefix(s)}:sessions", {self.sid: lease})

    async def send(self, message: dict | BaseModel) -> None:
        """One message to the client: a model of ours, or a worker's message as it wrote it (JSON)."""
        if isinstance(message, BaseModel):
            message = message.model_dump(mode="json")
        try:
            await asyncio.wait_for(self.ws.send_text(json.dumps(message)), self.settings.live_send_timeout_s)
        except asyncio.TimeoutError:
            raise Refused(
                "not_reading", f"The client took no message for {self.settings.live_send_timeout_s:g} s."
            ) from None

    async def close_with(self, code: str, message: str) -> None:
        if self.ws.application_state != WebSocketState.CONNECTED or self.ws.client_state != WebSocketState.CONNECTED:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                self.ws.send_text(json.dumps(LiveError(code=code, message=message).model_dump(mode="json"))), 2
            )
            await self.ws.close(CLOSE.get(code, 4500), reason=message[:120])

    async def cleanup(self) -> None:
        """The session's keys and its place go; a worker still serving it sees its place gone and drops it."""
        if not self.placed:
            return
        p = prefix(self.settings)
        # shielded: a cancelled handler (the server shutting down, a test client leaving) still cleans up
        with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.zrem(f"{p}:sessions", self.sid)
                pipe.lrem(f"{p}:waiting", 0, self.sid)
                pipe.delete(*session_keys(self.settings, self.sid))
                await pipe.execute()
