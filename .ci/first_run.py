"""CI: a newcomer's first run, both supported installs, each from a fresh clone of this commit:

1. editable (development): the README's first install line run verbatim in the clone (no extras:
   what `pip install -e .` brings is all the service gets), then `python -m service serve` from
   that venv in the clone;
2. the wheel (use): `pip wheel --no-deps .` in a clean clone, installed with `pip install
   torch==2.13.0 WHEEL` (no extras) into a fresh venv, the clone removed, and run from a folder
   outside the repository, so nothing is found by accident of the working directory: `python -m
   service predict` of a real face video prints an expression, a missing RAMFER_MODEL_DIR is one line
   (no traceback), then the same `serve` check as 1.

The serve check: a real face video posted to it gives 200 (or 202 and a poll) with an expression
of the served model and attention PNGs that decode; an empty file, a text file named .mp4 and a
truncated mp4 answer 4xx JSON; /docs works offline. A run-time import that only a test extra
brings in (PyAV, once) fails here. The service's process group is stopped on every exit path.

Run with the dev venv's python (it writes the test video with PyAV): `python .ci/first_run.py`
(`--only editable` or `--only wheel` for one of the two).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
READY_TIMEOUT_S = 240
RESULT_TIMEOUT_S = 300
EXPECTED_INSTALL = "python3 -m venv .venv && . .venv/bin/activate && pip install torch==2.13.0 -e ."


def say(message: str) -> None:
    print(f"[first-run {time.strftime('%H:%M:%S')}] {message}", flush=True)


class Failed(Exception):
    pass


def readme_first_command() -> str:
    """The first command of the README's first bash block (the fresh-machine start)."""
    block = re.search(r"```bash\n(.*?)```", (REPO / "README.md").read_text(), re.S).group(1)
    return next(line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(method: str, url: str, body: bytes | None = None, headers: dict | None = None, timeout: float = 120):
    """(status, headers, body) for any status: 4xx/5xx are answers to check, not exceptions."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def upload(url: str, path: Path, wait: float):
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
            f"Content-Type: video/mp4\r\n\r\n"
        ).encode()
        + path.read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return request(
        "POST", f"{url}/predict?wait={wait}", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )


def check(condition: bool, message: str) -> None:
    if not condition:
        raise Failed(message)


def make_inputs(work: Path) -> dict[str, Path]:
    sys.path.insert(0, str(REPO / "tests"))
    from videos import astronaut_frames, write_video

    face = write_video(work / "face.mp4", astronaut_frames(40))  # a real face (public-domain photo), H.264
    data = face.read_bytes()
    (work / "empty.mp4").write_bytes(b"")
    (work / "notes.mp4").write_text("this is not a video\n" * 50)
    (work / "cut.mp4").write_bytes(data[: len(data) // 2])  # the index (moov) is at the end: cut off
    return {"face": face, "empty": work / "empty.mp4", "text": work / "notes.mp4", "truncated": work / "cut.mp4"}


def wait_ready(url: str, proc: subprocess.Popen, log: Path) -> dict:
    start = time.monotonic()
    last = -10.0
    while True:
        if proc.poll() is not None:
            raise Failed(f"`python -m service serve` exited with {proc.returncode} before it was ready")
        failed = [line for line in log.read_text(errors="replace").splitlines() if "self-check failed" in line]
        if failed:  # the worker will never register: no point waiting out the timeout
            raise Failed(f"the worker cannot analyse video: {failed[0]}")
        try:
            status, _, body = request("GET", f"{url}/readyz", timeout=3)
            if status == 200:
                return json.loads(body)
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            status = None
        waited = time.monotonic() - start
        if waited > READY_TIMEOUT_S:
            raise Failed(f"/readyz not 200 after {READY_TIMEOUT_S} s (last answer: {status})")
        if waited - last >= 10:
            say(f"waiting for /readyz: {status or 'no answer'} after {waited:.0f} s")
            last = waited
        time.sleep(0.5)


def check_face_video(url: str, face: Path) -> None:
    classes = json.loads(request("GET", f"{url}/model")[2])["classes"]
    status, headers, body = upload(url, face, wait=60)
    check(status in (200, 202), f"POST /predict of a face video: {status} {body[:500]!r}")
    if status == 202:
        job = json.loads(body)
        say(f"202 (analysis longer than ?wait=60): polling {job['status_url']}")
        deadline = time.monotonic() + RESULT_TIMEOUT_S
        while True:
            view = json.loads(request("GET", f"{url}/jobs/{job['job_id']}")[2])
            if view["status"] in ("finished", "failed"):
                break
            check(time.monotonic() < deadline, f"job still {view['status']} after {RESULT_TIMEOUT_S} s")
            time.sleep(1)
        check(view["status"] == "finished", f"the face video's job failed: {view['error']}")
        result = view["result"]
    else:
        result = json.loads(body)
    check(result["expression"] in classes, f"expression {result['expression']!r} is not one of {classes}")
    check(result["faces"]["frames_with_face"] > 0, f"no face found: {result['faces']}")
    check(len(result["attention_maps"]) >= 1, "no attention maps in the result")
    for image in result["attention_maps"]:
        status, headers, png = request("GET", image["url"])
        check(
            status == 200 and headers.get("content-type", headers.get("Content-Type")) == "image/png",
            f"{image['url']}: {status}",
        )
        decoded = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
        check(
            png.startswith(b"\x89PNG\r\n\x1a\n") and decoded is not None and decoded.size > 0,
            f"{image['url']} does not decode as a PNG",
        )
    say(
        f"face video: {result['expression']} (confidence {result['confidence']}), face in "
        f"{result['faces']['frames_with_face']}/{result['faces']['frames']} frames, {len(result['attention_maps'])} attention PNGs decode"
    )


def check_bad_inputs(url: str, inputs: dict[str, Path]) -> None:
    for name in ("empty", "text", "truncated"):
        status, _headers, body = upload(url, inputs[name], wait=5)
        check(400 <= status < 500, f"{name} upload: {status}, not 4xx: {body[:300]!r}")
        error = json.loads(body).get("error", {})
        check(
            bool(error.get("code")) and bool(error.get("message")),
            f"{name} upload: no error code and message: {body[:300]!r}",
        )
        say(f"{name} upload: {status} {error['code']}: {error['message']}")


def check_docs_offline(url: str) -> None:
    status, _, html = request("GET", f"{url}/docs")
    check(status == 200, f"/docs: {status}")
    assets = re.findall(r'<(?:script|link)\b[^>]*\b(?:src|href)="([^"]+)"', html.decode())
    check(bool(assets) and all(a.startswith("/") for a in assets), f"/docs loads files from elsewhere: {assets}")
    for asset in assets:
        check(request("GET", url + asset)[0] == 200, f"/docs asset {asset} is not served")
    say(f"/docs: its {len(assets)} scripts and styles are served by the service")


def stop(proc: subprocess.Popen) -> None:
    """The whole process group (API, workers, redis-server), as Ctrl-C would; then SIGKILL."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            say("serve did not stop in 30 s: SIGKILL")
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # anything of the group that outlived serve
    proc.wait()


def serve_and_check(python: Path, cwd: Path, env: dict, work: Path, inputs: dict[str, Path], name: str) -> None:
    """`python -m service serve` run by `python` in `cwd`: ready, a face video, bad inputs, /docs
    offline, stopped with nothing left in its TMPDIR. The log is work/serve-NAME.log."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    tmp = work / f"tmp-{name}"
    tmp.mkdir()
    log_path = work / f"serve-{name}.log"
    proc = None
    with open(log_path, "wb") as log:
        try:
            proc = subprocess.Popen(
                [str(python), "-m", "service", "serve", "--port", str(port)],
                cwd=cwd,
                env={**env, "TMPDIR": str(tmp)},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            say(f"{name}: python -m service serve --port {port} (pid {proc.pid}) in {cwd}")
            ready = wait_ready(url, proc, log_path)
            say(f"{name}: ready: {ready}")
            check_face_video(url, inputs["face"])
            check_bad_inputs(url, inputs)
            check_docs_offline(url)
            stop(proc)
            left = [p.name for p in tmp.iterdir()]
            check(left == [], f"serve left behind in its TMPDIR: {left}")
            say(f"{name}: stopped; nothing left in its TMPDIR")
        except Failed as e:
            log.flush()
            tail = log_path.read_text(errors="replace")[-6000:]
            raise Failed(f"{name}: {e}\n---- the service's log (last 6000 characters) ----\n{tail}") from None
        finally:
            if proc is not None:
                stop(proc)


def editable_run(clone: Path, install: str, env: dict, work: Path, inputs: dict[str, Path]) -> None:
    say(f"editable: the README's install, verbatim, in the clone: {install}")
    start = time.monotonic()
    subprocess.run(["bash", "-c", install], cwd=clone, env=env, check=True)
    say(f"editable: installed in {time.monotonic() - start:.0f} s")
    serve_and_check(clone / ".venv" / "bin" / "python", clone, env, work, inputs, "editable")


def wheel_run(work: Path, env: dict, inputs: dict[str, Path]) -> None:
    """The wheel built from a clean clone of its own (no build/ or egg-info of an editable install
    to add files to it), in a fresh venv, run from a folder outside the repository."""
    start = time.monotonic()
    clone = work / "wheel-clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    venv = work / "wheel-venv"
    subprocess.run(["python3", "-m", "venv", str(venv)], env=env, check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "wheel", "--quiet", "--no-deps", ".", "-w", str(work / "dist")],
        cwd=clone,
        env=env,
        check=True,
    )
    wheel = next((work / "dist").glob("ramfer-*.whl"))
    say(
        f"wheel: built {wheel.name} ({wheel.stat().st_size / 1e6:.1f} MB) in {time.monotonic() - start:.0f} s; "
        f"pip install torch==2.13.0 {wheel.name} (no extras) in a fresh venv"
    )
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "torch==2.13.0", str(wheel)], cwd=work, env=env, check=True
    )
    say(f"wheel: installed in {time.monotonic() - start:.0f} s")
    shutil.rmtree(clone)  # nothing of the source is left to be found
    outside = work / "elsewhere"  # neither the repository nor a clone: no source, no models here
    outside.mkdir()
    shutil.copy(inputs["face"], outside / inputs["face"].name)
    site = subprocess.run(
        [str(python), "-c", "import service, training.bundled as b; print(b.MODELS); print(service.__file__)"],
        cwd=outside,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    check(
        all(Path(p).resolve().is_relative_to(venv.resolve()) for p in site),
        f"the package is not imported from the venv: {site}",
    )
    say(f"wheel: the package and its models are in the venv: {site[0]}")

    t = time.monotonic()
    run = subprocess.run(
        [str(python), "-m", "service", "predict", inputs["face"].name, "--json"],
        cwd=outside,
        env=env,
        capture_output=True,
        text=True,
        timeout=RESULT_TIMEOUT_S,
    )
    check(run.returncode == 0, f"python -m service predict: exit {run.returncode}: {run.stderr[-3000:]}")
    result = json.loads(run.stdout)
    check(
        result["expression"] in result["probabilities"] and result["faces"]["frames_with_face"] > 0,
        f"python -m service predict: {result['expression']!r}, {result['faces']}",
    )
    say(
        f"wheel: python -m service predict {inputs['face'].name}: {result['expression']} (confidence {result['confidence']}), "
        f"face in {result['faces']['frames_with_face']}/{result['faces']['frames']} frames, in {time.monotonic() - t:.0f} s"
    )

    (outside / "no-model").mkdir()
    run = subprocess.run(
        [str(python), "-m", "service", "predict", inputs["face"].name],
        cwd=outside,
        env={**env, "RAMFER_MODEL_DIR": str(outside / "no-model")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = run.stderr.strip().splitlines()
    check(
        run.returncode != 0
        and len(lines) == 1
        and "Traceback" not in run.stderr
        and lines[0].startswith("ramfer: cannot load the model: RAMFER_MODEL_DIR="),
        f"predict with an empty RAMFER_MODEL_DIR: exit {run.returncode}, stderr {run.stderr[-2000:]!r}",
    )
    say(f"wheel: predict with an empty RAMFER_MODEL_DIR, exit {run.returncode}: {lines[0]}")
    serve_and_check(python, outside, env, work, inputs, "wheel")
    say(f"wheel: {time.monotonic() - start:.0f} s in all")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--only", choices=("editable", "wheel"), default=None, help="one of the two installs (default: both)"
    )
    args = ap.parse_args(argv)
    command = readme_first_command()
    install, _, start = command.partition(" && python -m service serve")
    check(install == EXPECTED_INSTALL and start == "", f"the README's first command changed: {command!r}")
    work = Path(tempfile.mkdtemp(prefix="ramfer-firstrun-"))
    try:
        inputs = make_inputs(work)
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        say(f"fresh clones of {head} (committed work only)")
        clean_env = {
            k: v
            for k, v in os.environ.items()
            if k
            not in (
                "VIRTUAL_ENV",
                "PYTHONPATH",
                "RAMFER_REDIS_URL",
                "REDIS_URL",
                "RAMFER_STORAGE_DIR",
                "STORAGE_DIR",
                "RAMFER_MODEL_DIR",
                "MODEL_DIR",
            )
        }
        clean_env["PATH"] = os.pathsep.join(
            p for p in clean_env["PATH"].split(os.pathsep) if not p.startswith(str(REPO))
        )
        if args.only in (None, "editable"):
            clone = work / "clone"
            subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
            editable_run(clone, install, clean_env, work, inputs)
        if args.only in (None, "wheel"):
            wheel_run(work, clean_env, inputs)
        say("PASS")
        return 0
    except (Failed, subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
        say(f"FAIL: {e}")
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # CI cancelled: the finally still stops serve
    sys.exit(main())
