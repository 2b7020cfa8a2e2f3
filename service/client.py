"""A client of a running ramfer service (local or remote), and what `python -m service submit` runs.

    from service.client import Client
    with Client("http://gpu-host:8000", api_key="...") as c:
        result = c.predict("face.mp4", wait=30, on_progress=print)

`predict` uploads the video, and when the answer is not ready within `wait` seconds (202) follows
the job until it has finished, reporting its progress. A busy service (429: the queue is full or
the rate limit spent) and an unavailable one (503: Redis, the storage or no worker) are asked
again after the Retry-After they send (else after a growing pause), up to `retries` times; any
other error is raised as ServiceError with the service's own code and message.
"""

from __future__ import annotations

import contextlib
import json
import struct
import time
from collections.abc import Callable
from pathlib import Path

import httpx

RETRY_STATUSES = {429, 502, 503, 504}


class ServiceError(Exception):
    """The service refused or failed: `status` (HTTP), `code` and `message` as the service said."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{message} ({code}, HTTP {status})")
        self.status, self.code, self.message = status, code, message


def error_of(response: httpx.Response) -> ServiceError:
    try:
        error = response.json()["error"]
        return ServiceError(response.status_code, error["code"], error["message"])
    except (ValueError, KeyError, TypeError):  # not one of the service's answers (a proxy's page ...)
        return ServiceError(
            response.status_code, f"http_{response.status_code}", response.text[:200] or response.reason_phrase
        )


class Client:
    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        timeout: float = 60.0,
        retries: int = 8,
        backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
        poll_s: float = 0.5,
        on_retry: Callable[[httpx.Response | Exception, float], None] | None = None,
        transport: httpx.BaseTransport | None = None,
    ):
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout, transport=transport)
        self.retries, self.backoff_s, self.max_backoff_s, self.poll_s = retries, backoff_s, max_backoff_s, poll_s
        self.on_retry = on_retry  # told of each retry and the pause before it (the CLI prints it)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, url: str, **kwargs) -> httpx.Response:
        """One call, asked again on 429/502/503/504 and on a connection that failed, after the
        service's Retry-After when it sends one, else after a pause that doubles each time."""
        files = kwargs.pop("files_from", None)  # (field, path): the file is reopened for every try
        for attempt in range(self.retries + 1):
            try:
                if files:
                    field, path = files
                    with open(path, "rb") as f:
                        response = self.http.request(
                            method, url, files={field: (Path(path).name, f, "application/octet-stream")}, **kwargs
                        )
                else:
                    response = self.http.request(method, url, **kwargs)
            except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError) as e:
                if attempt == self.retries:
                    raise ServiceError(
                        0, "unreachable", f"The service at {self.http.base_url} cannot be reached: {e}"
                    ) from e
                self._pause(e, None, attempt)
                continue
            if response.status_code not in RETRY_STATUSES or attempt == self.retries:
                return response
            self._pause(response, response.headers.get("retry-after"), attempt)
        raise AssertionError("unreachable")

    def _pause(self, why, retry_after: str | None, attempt: int) -> None:
        delay = min(self.backoff_s * 2**attempt, self.max_backoff_s)
        if retry_after and retry_after.strip().isdigit():
            delay = min(float(retry_after), self.max_backoff_s * 4)  # the service knows best; bounded all the same
        if self.on_retry:
            self.on_retry(why, delay)
        time.sleep(delay)

    def submit(self, path: str | Path, wait: float = 0.0) -> dict:
        """Upload: the result (when done within `wait` s) or {"job_id", "status_url"}."""
        response = self.request(
            "POST",
            "/predict",
            params={"wait": wait},
            files_from=("file", path),
            timeout=self.http.timeout.read + wait if self.http.timeout.read else None,
        )
        if response.status_code not in (200, 202):
            raise error_of(response)
        return response.json()

    def job(self, job_id: str) -> dict:
        response = self.request("GET", f"/jobs/{job_id}")
        if response.status_code != 200:
            raise error_of(response)
        return response.json()

    def wait_for(
        self, job_id: str, on_progress: Callable[[dict], None] | None = None, timeout: float | None = None
    ) -> dict:
        """Poll a job until it has finished: its result; a failed job raises its error."""
        deadline = time.monotonic() + timeout if timeout else None
        while True:
            view = self.job(job_id)
            if on_progress:
                on_progress(view.get("progress") or {})
            if view["status"] == "finished":
                return {**view["result"], "job_id": job_id}
            if view["status"] == "failed":
                error = view.get("error") or {}
                raise ServiceError(200, error.get("code", "failed"), error.get("message", "The analysis failed."))
            if deadline and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {view['status']} after {timeout} s")
            time.sleep(self.poll_s)

    def predict(
        self,
        path: str | Path,
        wait: float = 0.0,
        on_progress: Callable[[dict], None] | None = None,
        timeout: float | None = None,
    ) -> dict:
        """Analyse a video: upload it, follow its job; the result (docs/api.md, "The result")."""
        answer = self.submit(path, wait=wait)
        if "job_id" in answer and "expression" not in answer:
            return self.wait_for(answer["job_id"], on_progress, timeout)
        if on_progress:
            on_progress({"stage": "done", "percent": 100.0})
        return answer

    def image(self, url: str) -> bytes:
        """An attention image of a result (follows the redirect of a presigned-URL service)."""
        response = self.request("GET", url, follow_redirects=True)
        if response.status_code != 200:
            raise error_of(response)
        return response.content

    def model(self) -> dict:
        response = self.request("GET", "/model")
        if response.status_code != 200:
            raise error_of(response)
        return response.json()


class LiveSession:
    """A WS /live session (docs/usage.md, "Live"): `send(jpeg, capture_time)` frames, `messages()` what
    the service says as it comes, `stop()` when done (the last clips, a decision and "end" follow).
    Raises ServiceError with the service's code and message when it refuses or ends the session.

        with LiveSession("http://host:8000", fps=15) as s:
            s.send(jpeg_bytes, time.time()); ...; s.stop()
            for m in s.messages(): print(m)
    """

    def __init__(self, url: str, fps: float = 15.0, api_key: str | None = None, open_timeout: float = 30.0):
        from websockets.sync.client import connect

        ws_url = url.rstrip("/").replace("https://", "wss://", 1).replace("http://", "ws://", 1) + "/live"
        # entered as a context manager (websockets 17 deprecates a bare connect()); close() leaves it
        self.ws = connect(ws_url, open_timeout=open_timeout, max_size=2**22).__enter__()
        start = {"type": "start", "fps": fps, **({"api_key": api_key} if api_key else {})}
        self.ws.send(json.dumps(start))
        self.ready = self._next()
        if self.ready is None:
            raise ServiceError(0, "closed", "The service closed the session before it started.")

    def __enter__(self) -> LiveSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.ws.close()

    def send(self, jpeg: bytes, capture_time: float) -> None:
        self.ws.send(struct.pack(">d", capture_time) + jpeg)

    def stop(self) -> None:
        self.ws.send(json.dumps({"type": "stop"}))

    def _next(self, timeout: float | None = None) -> dict | None:
        from websockets.exceptions import ConnectionClosed

        try:
            message = json.loads(self.ws.recv(timeout))
        except ConnectionClosed:
            return None
        if message.get("type") == "error":  # the close (with its code) follows
            with contextlib.suppress(ConnectionClosed, TimeoutError):
                self.ws.recv(5)
            raise ServiceError(self.ws.close_code or 0, message["code"], message["message"])
        return message

    def messages(self, timeout: float | None = None):
        """Messages until the session ends ("end" is the last); an error raises ServiceError."""
        while (message := self._next(timeout)) is not None:
            yield message
            if message["type"] == "end":
                return


def camera_frames(source, fps: float, seconds: float | None = None):
    """(capture time, JPEG) of a camera (its number) or a video file played at its own pace, at most
    `fps` a second: a file's frames are taken when their time comes, as a camera's would be."""
    import cv2

    cap = cv2.VideoCapture(source)
    if not cap.isOpened():
        raise OSError(f"cannot open {source!r} (a video file or a camera number)")
    return _paced(cap, isinstance(source, str), fps, seconds)


def _paced(cap, is_file: bool, fps: float, seconds: float | None):
    import cv2

    file_fps = cap.get(cv2.CAP_PROP_FPS) if is_file else 0
    start, sent, index = time.time(), 0, -1
    try:
        while seconds is None or time.time() - start < seconds:
            ok, frame = cap.read()
            if not ok:
                return
            index += 1
            if file_fps > 0:  # a file: this frame's moment in the video, kept only when the next send is due
                at = index / file_fps
                if at < sent / fps:
                    continue
                time.sleep(max(start + at - time.time(), 0))
            else:
                time.sleep(max(start + sent / fps - time.time(), 0))
            ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 80])
            sent += 1
            yield time.time(), jpeg.tobytes()
    finally:
        cap.release()


def live_stream(url: str, source, fps: float = 15.0, api_key: str | None = None, seconds: float | None = None):
    """Messages of a live session fed from `source` (camera_frames), as they come; the frames are
    sent from a thread, so a slow reader does not slow the camera (the service drops, not queues)."""
    import threading

    frames = camera_frames(source, fps, seconds)  # a source that cannot be opened fails here, before connecting
    with LiveSession(url, fps=fps, api_key=api_key) as session:
        failed: list[BaseException] = []

        def feed() -> None:
            try:
                for t, jpeg in frames:
                    session.send(jpeg, t)
                session.stop()
            except Exception as e:  # the session ended under it: messages() says why
                failed.append(e)

        sender = threading.Thread(target=feed, name="live-feed", daemon=True)
        sender.start()
        yield session.ready
        yield from session.messages()
        sender.join(5)
