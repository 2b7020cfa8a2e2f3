"""The live worker: one process, the model loaded once, serving up to live_sessions_per_worker
camera sessions at a time from Redis (the keys are described in service/live.py).

Each session runs the uploads' own pipeline (service.analysis.Analysis: detector, tracking,
crops, clips, model), fed one frame at a time and scoring each clip as soon as it is complete.
One loop, no thread per session: each turn it reads what every session's frames stream holds
(at most live_buffer_frames each: the API trims older frames, which are dropped), analyses them,
and writes each scored clip, and every few clips the decision over the last seconds, to the
session's results stream. A turn also proves the worker alive (the sessions' worker keys).
The messages are the models of service/schemas.py (LiveClip, LiveDecision, LiveEnd, LiveError).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import socket
import time
from collections import deque

import cv2
import numpy as np
import redis.exceptions

from service import live
from service.analysis import Analysis
from service.decision import decide_clips
from service.jobs import connect
from service.judge import box_of, by_class
from service.schemas import LiveClip, LiveDecision, LiveEnd, LiveError
from service.settings import Settings
from service.stopwatch import Stopwatch
from training.clips import CLIP_LENGTH
from training.video import Frame

log = logging.getLogger(__name__)
KEEP_FRAMES = 3 * CLIP_LENGTH  # per person: the crops and boxes a clip still to come can need


class SessionError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


class StreamAnalysis:
    """One camera's analysis: frames in (JPEG), clip and decision messages out."""

    def __init__(self, sid: str, predictor, settings: Settings, fps: float):
        self.sid, self.predictor, self.settings, self.fps = sid, predictor, settings, fps
        # frames one at a time (a batch would wait for frames to come); new faces looked for once a second, as in uploads
        self.analysis = Analysis(predictor, settings, fps, Stopwatch(), detect_batch=1, eager=True)
        self.last_id = "0-0"
        self.next_seq = 0  # the API numbers frames 0, 1, ...: a gap is frames dropped before they were read
        self.dropped = 0
        self.received = 0
        self.size: tuple[int, int] | None = None
        self.recent: deque = deque()  # (capture time, person id, clip number, network probabilities, maps)
        self.clips_sent = 0
        self.pushed = 0  # frames given to the analysis: its frame indices
        self.analysed_times: deque[float] = deque(maxlen=64)  # capture times of the frames analysed last

    def add(self, seq: int, t: float, jpeg: bytes) -> list[dict]:
        """One frame in: the messages it completes (clips, maybe a decision), as JSON objects."""
        self.dropped += seq - self.next_seq
        self.next_seq = seq + 1
        self.received = seq + 1
        gray = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
        if gray is None:
            raise SessionError("bad_frame", f"Frame {seq} is not a JPEG image that can be decoded.")
        h, w = gray.shape
        if w * h > self.settings.max_pixels:
            raise SessionError(
                "resolution_too_large",
                f"{w}x{h} is larger than this service accepts ({self.settings.max_pixels:,} pixels per frame).",
            )
        if self.size is None:
            self.size = (w, h)
        elif self.size != (w, h):
            raise SessionError(
                "frame_size_changed", f"Frame {seq} is {w}x{h}; the session's frames are {self.size[0]}x{self.size[1]}."
            )
        self.analysed_times.append(t)
        self.analysis.push(Frame(self.pushed, t, gray))
        self.pushed += 1
        return [m.model_dump(mode="json") for m in self.collect()]

    def finish(self) -> list[dict]:
        """The last clips after the client's stop, a decision and "end", as JSON objects."""
        if self.pushed:
            self.analysis.finish()
        return [m.model_dump(mode="json") for m in [*self.collect(final=True), LiveEnd(**self.counts())]]

    def counts(self) -> dict:
        t = self.analysed_times
        fps = (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 and t[-1] > t[0] else None
        return {
            "frames_received": self.received,
            "frames_analysed": len(self.analysis.times),
            "dropped": self.dropped,
            "fps_analysed": None if fps is None else round(fps, 2),
        }

    def collect(self, final: bool = False) -> list[LiveClip | LiveDecision]:
        a, classes = self.analysis, self.predictor.classes
        messages: list[LiveClip | LiveDecision] = []
        for person in a.people.values():
            for number, idx, probs, shown, maps in person.scorer.scored:
                last = int(idx[-1])
                messages.append(
                    LiveClip(
                        clip=number,
                        person=person.id,
                        start_s=round(a.times[int(idx[0])], 3),
                        end_s=round(a.times[last], 3),
                        label=classes[int(probs.argmax())],
                        probabilities=by_class(classes, shown),
                        face=box_of(person.boxes[last]),
                    )
                )
                self.recent.append((a.times[last], person.id, number, probs, maps))
            person.scorer.scored.clear()
            person.scorer.probs.clear()  # the live decision reads self.recent; uploads' summaries are not kept
            person.scorer.reported.clear()
        messages.sort(key=lambda m: (m.clip, m.person))
        before = self.clips_sent
        self.clips_sent += len(messages)
        self.forget()
        every = self.settings.live_decide_every_clips
        if (
            messages
            and (final or self.clips_sent // every > before // every)
            and (decision := self.decide()) is not None
        ):
            messages.append(decision)
        return messages

    def forget(self) -> None:
        """A session may last hours: only what a clip still to come or the decision window needs is kept."""
        a = self.analysis
        n = len(a.times)
        while self.recent and self.recent[0][0] < self.recent[-1][0] - self.settings.live_window_s:
            self.recent.popleft()
        a.times.forget_before(n - KEEP_FRAMES)
        a.tracker.forget_gone(n)
        for pid in list(a.people):
            person = a.people[pid]
            for i in [i for i in person.boxes if i < n - KEEP_FRAMES]:
                del person.boxes[i]
                person.scorer.crops.pop(i, None)
            if not person.boxes and not person.scorer.pending:
                del a.people[pid]

    def decide(self) -> LiveDecision | None:
        """The service's decision rule (training.clips.decide_video, with the service's settings) on the
        clips of the last live_window_s seconds of the person seen in most of them."""
        if not self.recent:
            return None
        counts: dict[int, int] = {}
        for _, pid, *_ in self.recent:
            counts[pid] = counts.get(pid, 0) + 1
        main = max(counts, key=lambda p: (counts[p], -p))
        rows = [r for r in self.recent if r[1] == main]
        classes = self.predictor.classes
        winner, votes, _, confidence = decide_clips(np.stack([r[3] for r in rows]), self.predictor, self.settings)
        maps = rows[-1][4]
        return LiveDecision(
            person=main,
            expression=classes[winner],
            confidence=confidence,
            votes={c: int(v) for c, v in zip(classes, votes)},
            clips=len(rows),
            start_s=round(rows[0][0], 3),
            end_s=round(rows[-1][0], 3),
            # where the network looked at the latest clip's last frame, (h, w) in (0, 1) over the face box
            attention=None if maps is None else np.round(maps[-1], 3).tolist(),
            **self.counts(),
        )


class LiveWorker:
    """The loop: claim sessions while there is room, serve each a turn, report them alive."""

    def __init__(self, settings: Settings, predictor, redis=None):
        self.settings, self.predictor = settings, predictor
        self.redis = redis or connect(settings)
        self.name = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.sessions: dict[str, StreamAnalysis] = {}
        self.p = live.prefix(settings)

    def key(self, sid: str, part: str) -> str:
        return live.session_key(self.settings, sid, part)

    def run(self, stop=lambda: False) -> None:
        try:
            while not stop():
                try:
                    self.turn()
                except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as e:
                    log.warning("live worker: Redis unavailable (%s): its %d session(s) dropped", e, len(self.sessions))
                    self.sessions.clear()  # the API tells their clients; the keys expire
                    time.sleep(1.0)
        finally:  # stopped (SIGTERM raises SystemExit here): its clients are told now, not after the grace
            self.close_all("worker_lost", "The live worker was stopped; open a new session.")

    def turn(self) -> None:
        s, r = self.settings, self.redis
        grace = max(1, math.ceil(s.live_worker_grace_s))
        r.zadd(f"{self.p}:workers", {self.name: time.time() + s.live_worker_grace_s})
        r.expire(f"{self.p}:workers", grace + 60)
        self.claim(block=not self.sessions)
        if not self.sessions:
            return
        sids = list(self.sessions)
        with r.pipeline(transaction=False) as pipe:
            for sid in sids:
                pipe.zscore(f"{self.p}:sessions", sid)
                pipe.hget(self.key(sid, "ctl"), "stop")
            found = pipe.execute()
        for sid, placed, _stop in zip(sids, found[0::2], found[1::2]):
            # the API ended it, or its lease ran out: nobody reads its results
            if placed is None or placed < time.time():
                self.drop(sid)
            else:
                r.set(self.key(sid, "worker"), self.name, ex=grace)
        streams = {self.key(sid, "in"): self.sessions[sid].last_id for sid in self.sessions}
        replies = dict(r.xread(streams, count=s.live_buffer_frames, block=20)) if streams else {}
        for sid, _placed, stop in zip(sids, found[0::2], found[1::2]):
            if sid not in self.sessions:
                continue
            session = self.sessions[sid]
            try:
                messages = []
                entries = replies.get(self.key(sid, "in").encode(), [])
                for entry_id, f in entries:
                    session.last_id = entry_id
                    messages += session.add(int(f[b"seq"]), float(f[b"t"]), f[b"jpeg"])
                if stop and not entries:  # the client asked to finish and every frame sent has been read
                    self.post(sid, messages + session.finish())
                    self.drop(sid)
                else:
                    self.post(sid, messages)
            except SessionError as e:
                self.post(sid, [error_message(e.code, e.message)])
                self.drop(sid)
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                raise
            except Exception:
                log.exception("live session %s failed", sid)
                self.post(sid, [error_message("internal_error", "Internal error; it has been logged.")])
                self.drop(sid)

    def claim(self, block: bool) -> None:
        """Sessions waiting, while this worker has room; with `block`, waits up to 0.5 s for the first."""
        s, r = self.settings, self.redis
        while len(self.sessions) < s.live_sessions_per_worker:
            if block:
                popped = r.blpop([f"{self.p}:waiting"], timeout=0.5)
                sid, block = (popped[1] if popped else None), False
            else:
                sid = r.lpop(f"{self.p}:waiting")
            if sid is None:
                return
            sid = sid.decode()
            fps = r.hget(self.key(sid, "ctl"), "fps")
            if fps is None or r.zscore(f"{self.p}:sessions", sid) is None:
                continue  # gone before a worker had room
            self.sessions[sid] = StreamAnalysis(sid, self.predictor, s, float(fps))
            r.set(self.key(sid, "worker"), self.name, ex=max(1, math.ceil(s.live_worker_grace_s)))
            log.info("live session %s: started (%d served)", sid, len(self.sessions))

    def post(self, sid: str, messages: list[dict]) -> None:
        if not messages:
            return
        with self.redis.pipeline(transaction=False) as pipe:
            for m in messages:
                pipe.xadd(self.key(sid, "out"), {"m": json.dumps(m)}, maxlen=1000)
            pipe.expire(self.key(sid, "out"), live.OUT_TTL_S)
            pipe.execute()

    def drop(self, sid: str) -> None:
        self.sessions.pop(sid, None)
        self.redis.delete(self.key(sid, "in"), self.key(sid, "worker"), self.key(sid, "ctl"))

    def close_all(self, code: str, message: str) -> None:
        for sid in list(self.sessions):
            try:
                self.post(sid, [error_message(code, message)])
                self.drop(sid)
            except redis.exceptions.RedisError:
                pass
        with contextlib.suppress(redis.exceptions.RedisError):
            self.redis.zrem(f"{self.p}:workers", self.name)


def error_message(code: str, message: str) -> dict:
    """The message that ends a session (LiveError), as the API forwards it before closing."""
    return LiveError(code=code, message=message).model_dump(mode="json")


def run_live_worker(settings: Settings) -> None:
    from service.worker import load_predictor

    predictor = load_predictor(settings, check=True)
    log.info("live worker ready: up to %d session(s)", settings.live_sessions_per_worker)
    LiveWorker(settings, predictor).run()
