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
        return ServiceError(response.status_code, f"http_{response.status_code}", response.text[:200] or response.reason_phrase)


class Client:
    def __init__(self, url: str, api_key: str | None = None, timeout: float = 60.0, retries: int = 8,
                 backoff_s: float = 1.0, max_backoff_s: float = 30.0, poll_s: float = 0.5,
                 on_retry: Callable[[httpx.Response | Exception, float], None] | None = None,
                 transport: httpx.BaseTransport | None = None):
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
                        response = self.http.request(method, url, files={field: (Path(path).name, f, "application/octet-stream")}, **kwargs)
                else:
                    response = self.http.request(method, url, **kwargs)
            except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError) as e:
                if attempt == self.retries:
                    raise ServiceError(0, "unreachable", f"The service at {self.http.base_url} cannot be reached: {e}") from e
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
        response = self.request("POST", "/predict", params={"wait": wait}, files_from=("file", path),
                                timeout=self.http.timeout.read + wait if self.http.timeout.read else None)
        if response.status_code not in (200, 202):
            raise error_of(response)
        return response.json()

    def job(self, job_id: str) -> dict:
        response = self.request("GET", f"/jobs/{job_id}")
        if response.status_code != 200:
            raise error_of(response)
        return response.json()

    def wait_for(self, job_id: str, on_progress: Callable[[dict], None] | None = None, timeout: float | None = None) -> dict:
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

    def predict(self, path: str | Path, wait: float = 0.0, on_progress: Callable[[dict], None] | None = None,
                timeout: float | None = None) -> dict:
        """Analyse a video: upload it, follow its job; the result (contract.md)."""
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
