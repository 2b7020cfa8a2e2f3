"""python -m service {serve,worker,live-worker,predict,submit,live,settings,health}."""

from __future__ import annotations

import argparse
import atexit
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

log = logging.getLogger("service")


def cmd_serve(args) -> None:
    import uvicorn

    from service.api import create_app
    from service.embedded import EmbeddedRedis, start_workers, stop_processes, worker_env
    from service.settings import Settings

    settings = Settings()
    workers = args.workers if args.workers is not None else settings.workers
    if settings.redis_url is None:
        check_model_or_exit(settings)  # the workers it would start could not load it: say so now, in one line
    embedded, procs = None, []
    exit_on_signals()
    try:
        if settings.redis_url is None:
            embedded = EmbeddedRedis()
            atexit.register(embedded.cleanup)  # idempotent; for exits that skip the finally below
            url = embedded.start()
            log.info("no RAMFER_REDIS_URL (or REDIS_URL): started an embedded Redis at %s", url)
            update = {"redis_url": url}
            if "storage_dir" not in settings.model_fields_set:
                # jobs live only as long as this Redis, so their files live in its folder, removed with it
                update["storage_dir"] = embedded.dir / "storage"
            settings = settings.model_copy(update=update)
            # share the cores: N workers of one torch thread each beat N workers of all threads each
            live_workers = settings.live_workers
            threads = settings.torch_threads or max(1, (os.cpu_count() or 1) // max(workers + live_workers, 1))
            env = worker_env(url, threads, settings.storage_dir)
            procs = start_workers(workers, env) + start_workers(live_workers, env, command="live-worker")
            log.info(
                "started %d worker(s) and %d live worker(s) with %d torch thread(s) each",
                workers,
                live_workers,
                threads,
            )
            stop_when_workers_are_gone(procs)
        else:
            log.info("RAMFER_REDIS_URL (or REDIS_URL) set: API only; run workers with `python -m service worker`")
        uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="info")
    finally:
        stop_processes(procs)
        if embedded:
            embedded.cleanup()


def check_model_or_exit(settings, flag: str | None = None) -> None:
    """Exit with one line (`ramfer: cannot load the model: RAMFER_MODEL_DIR=...: config.json not found`),
    no traceback, when the checkpoint or the detector's weights cannot be loaded."""
    from service.selfcheck import ModelUnavailable, check_model_files

    try:
        check_model_files(settings, flag)
    except ModelUnavailable as e:
        sys.exit(f"ramfer: {e}")


WORKERS_GONE = 3  # serve's exit status when its workers all exited (as a worker's failed self-check)
workers_gone = threading.Event()


def stop_when_workers_are_gone(procs: list) -> None:
    """If every embedded worker exits on its own (a failed self-check exits 3 before registering;
    a crash), nothing will ever answer a job: `serve` stops, saying so, with exit status 3, instead of
    running on with /readyz at 503. A worker stopped by `serve` itself (SIGTERM, on the way out) is
    not a reason: its exit status is then negative or 0 and `serve` is already stopping."""

    def watch() -> None:
        while any(p.poll() is None for p in procs):
            time.sleep(0.5)
        codes = [p.returncode for p in procs]
        if all(c > 0 for c in codes):
            log.error(
                "every worker exited (exit status %s; the reason is in their log above): stopping, "
                "since no job could be analysed",
                ", ".join(map(str, codes)),
            )
            workers_gone.set()
            os.kill(os.getpid(), signal.SIGTERM)  # uvicorn's own graceful shutdown, then exit_on_signals' handler

    threading.Thread(target=watch, name="watch-workers", daemon=True).start()


def exit_on_signals() -> None:
    """SIGTERM and SIGHUP (a killed process group, a closed terminal; for a worker, also `serve` gone:
    service/lifetime.py) end `serve` through its `finally`, like Ctrl-C does: workers stopped, the
    embedded Redis and its folder removed; in a worker, they unwind what it was doing (the
    self-check's temporary folder is removed; once it works, RQ's own handlers take SIGTERM for a
    warm shutdown, SIGHUP stays this one's).
    (Python's default for both is to die on the spot, leaving them behind. uvicorn handles
    SIGTERM while it serves and raises it again once it has shut down: this handler then runs.)"""

    def leave(signum, frame):
        raise SystemExit(WORKERS_GONE if workers_gone.is_set() else 128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, leave)


def stop_with_serve(settings) -> None:
    """A worker `serve` started ends when `serve` is gone, even killed outright (it cleans up nothing then)."""
    if settings.serve_pid:
        from service.lifetime import stop_with_parent

        stop_with_parent(settings.serve_pid)


def cmd_worker(args) -> None:
    from service.settings import Settings
    from service.worker import run_worker

    exit_on_signals()  # a worker stopped during its self-check removes the check's temporary folder too
    settings = Settings()
    if not settings.redis_url:
        sys.exit("python -m service worker: set RAMFER_REDIS_URL (or REDIS_URL) to the Redis the API uses")
    stop_with_serve(settings)
    run_worker(settings, burst=args.burst)


def cmd_live_worker(args) -> None:
    from service.live_worker import run_live_worker
    from service.selfcheck import ModelUnavailable, SelfCheckError
    from service.settings import Settings

    exit_on_signals()
    settings = Settings()
    if not settings.redis_url:
        sys.exit("python -m service live-worker: set RAMFER_REDIS_URL (or REDIS_URL) to the Redis the API uses")
    stop_with_serve(settings)
    try:
        run_live_worker(settings)
    except (ModelUnavailable, SelfCheckError) as e:
        log.error("live worker self-check failed: %s", e)
        sys.exit(3)


def cmd_live(args) -> None:
    """Stream a video file (played at its own pace, as a camera would give it) or a camera to a running
    service's WS /live and print each clip's label, and the decided expression, as they come."""
    from service.client import ServiceError, live_stream

    api_key = args.api_key or os.environ.get("RAMFER_API_KEY")
    source = int(args.source) if args.source.isdigit() else args.source
    t0 = None  # the first clip's start: times are printed from there (the capture clock is time.time())
    try:
        for m in live_stream(args.url, source, fps=args.fps, api_key=api_key, seconds=args.seconds):
            if args.json:
                print(json.dumps(m), flush=True)
            elif m["type"] == "clip":
                t0 = m["start_s"] if t0 is None else t0
                print(
                    f"clip {m['clip']:4d}  {m['start_s'] - t0:6.2f}-{m['end_s'] - t0:6.2f} s  person {m['person']}  "
                    f"{m['label']:<9} {m['probabilities'][m['label']]:.2f}  ({time.time() - m['end_s']:.2f} s after its last frame)",
                    flush=True,
                )
            elif m["type"] in ("decision", "end"):
                said = (
                    f"{m['expression']} (confidence {m['confidence']:.2f}, {m['clips']} clips)"
                    if m["type"] == "decision"
                    else "end"
                )
                print(
                    f"== {said}; frames {m['frames_analysed']}/{m['frames_received']} analysed, {m['dropped']} dropped, "
                    f"{m['fps_analysed']} fps",
                    flush=True,
                )
    except ServiceError as e:
        print(
            json.dumps({"error": {"code": e.code, "message": e.message}})
            if args.json
            else f"error ({e.code}): {e.message}",
            file=sys.stderr,
        )
        sys.exit(2)
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


def cmd_predict(args) -> None:
    from service.batch import run_batch
    from service.pipeline import analyse_video
    from service.selfcheck import ModelUnavailable
    from service.settings import Settings
    from service.worker import load_predictor
    from training.bundled import checkpoint_folder
    from training.video import VideoError

    batch = batch_or_exit(args)
    settings = Settings()
    if args.model:
        settings = settings.model_copy(update={"model_dir": checkpoint_folder(args.model)})
    try:
        predictor = load_predictor(settings, flag="--model" if args.model else None)  # once, for every video
    except ModelUnavailable as e:
        sys.exit(f"ramfer: {e}")
    if batch:
        counts = run_batch(
            batch,
            Path(args.out),
            lambda video, folder: with_local_images(analyse_video(video, predictor, settings, out_dir=folder), folder),
            quiet=args.quiet,
        )
        finish_batch(counts, Path(args.out))
        return
    video = args.videos[0]
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="ramfer-"))
    try:
        result = analyse_video(Path(video), predictor, settings, out_dir=out)
    except BaseException as e:
        if not args.out:  # the folder was made for this result's images: none will be kept
            shutil.rmtree(out, ignore_errors=True)
        if not isinstance(e, VideoError):
            raise
        print(
            json.dumps({"error": {"code": e.code, "message": e.message}})
            if args.json
            else f"error ({e.code}): {e.message}",
            file=sys.stderr,
        )
        sys.exit(2)
    show_result(args, video, with_local_images(result, out))


def with_local_images(result: dict, folder: Path) -> dict:
    """The result with each image's url the path of its PNG in `folder` (an in-process result's images)."""
    from service.jobs import result_images

    for image in result_images(result):
        image["url"] = str((folder / f"{image['name']}.png").resolve())
    return result


def show_result(args, video: str, result: dict) -> None:
    """One video's result on stdout: all of it as JSON (--json), its timeline as CSV (--csv), or in words."""
    from service.tables import timeline_csv

    if args.json:
        print(json.dumps(result, indent=2))
    elif args.csv:
        print(timeline_csv(result), end="")
    else:
        print_result(video, result)


def batch_or_exit(args) -> list | None:
    """The videos of a batch (several files or a folder; docs/usage.md, "Many videos at once"), None for one
    video; exits with one line when a batch has no --out or no video."""
    from service.batch import is_batch, videos_of

    if not is_batch(args.videos):
        return None
    if not args.out:
        sys.exit("ramfer: several videos or a folder: give --out DIR, the folder for their results and summary.csv")
    batch = videos_of(args.videos)
    if not batch:
        sys.exit(f"ramfer: no video files in {' '.join(args.videos)}")
    return batch


def finish_batch(counts: dict[str, int], out: Path) -> None:
    """The batch in one line; exit status 1 when a video failed (its error is in the summary)."""
    print(
        f"{sum(counts.values())} videos: {counts['analysed']} analysed, {counts['skipped']} done before, "
        f"{counts['failed']} failed; summary: {out / 'summary.csv'}"
    )
    if counts["failed"]:
        sys.exit(1)


def cmd_submit(args) -> None:
    """Upload a video to a running service, show its progress, print the result (as `predict` does);
    several videos or a folder: a batch, as `predict` runs one."""
    from tqdm import tqdm

    from service.client import Client, ServiceError

    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request would break the progress bar
    api_key = args.api_key or os.environ.get("RAMFER_API_KEY")
    if batch := batch_or_exit(args):
        submit_batch(args, batch, api_key)
        return
    video = args.videos[0]
    bar = tqdm(
        total=100.0,
        unit="%",
        desc=Path(video).name,
        disable=args.quiet or None,
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}",
        file=sys.stderr,
    )

    def progress(p: dict) -> None:
        if p.get("percent") is not None:
            bar.update(max(float(p["percent"]) - bar.n, 0))
        bar.set_postfix_str(p.get("stage", ""))

    def retrying(why, delay: float) -> None:
        what = f"HTTP {why.status_code}" if hasattr(why, "status_code") else type(why).__name__
        bar.write(f"service busy or unavailable ({what}); trying again in {delay:.0f} s", file=sys.stderr)

    try:
        with Client(args.url, api_key=api_key, retries=args.retries, on_retry=retrying) as client:
            result = client.predict(video, wait=args.wait, on_progress=progress, timeout=args.timeout)
    except ServiceError as e:
        bar.close()
        print(
            json.dumps({"error": {"code": e.code, "message": e.message}})
            if args.json
            else f"error ({e.code}): {e.message}",
            file=sys.stderr,
        )
        sys.exit(2)
    except (OSError, TimeoutError) as e:
        bar.close()
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    bar.close()
    show_result(args, video, result)


def submit_batch(args, batch, api_key: str | None) -> None:
    """Several videos to a running service, one at a time, each result into its folder under --out."""
    from tqdm import tqdm

    from service.batch import run_batch
    from service.client import Client

    def retrying(why, delay: float) -> None:
        what = f"HTTP {why.status_code}" if hasattr(why, "status_code") else type(why).__name__
        tqdm.write(f"service busy or unavailable ({what}); trying again in {delay:.0f} s", file=sys.stderr)

    with Client(args.url, api_key=api_key, retries=args.retries, on_retry=retrying) as client:
        counts = run_batch(
            batch,
            Path(args.out),
            lambda video, folder: client.predict(video, wait=args.wait, timeout=args.timeout),
            quiet=args.quiet,
        )
    finish_batch(counts, Path(args.out))


def print_result(video: str, result: dict) -> None:
    """The answer for the main person (the top level), then a block per person when there are several."""
    v, t = result["video"], result["timings_ms"]
    people = result.get("people", [])
    print(
        f"{video}: {result['expression']} (confidence {result['confidence']:.2f}, "
        f"{sum(result['votes'].values())} clips voted)"
        + (f"; {len(people)} people, the main one below" if len(people) > 1 else "")
    )
    turned = (
        f" (turned {v['rotation']}° clockwise as its container says" + (", mirrored" if v.get("mirrored") else "") + ")"
        if v.get("rotation") or v.get("mirrored")
        else ""
    )
    print(
        f"  video   {v['width']}x{v['height']}{turned}, {v['frames']} frames, {v['fps']:.2f} fps, {v['duration_s']:.2f} s; "
        f"face in {result['faces']['frames_with_face']}/{result['faces']['frames']} frames"
    )
    print("  votes   " + ", ".join(f"{c} {n}" for c, n in sorted(result["votes"].items(), key=lambda kv: -kv[1]) if n))
    print(
        "  timeline "
        + ", ".join(f"{s['label'] or 'no face'} {s['start_s']:.2f}-{s['end_s']:.2f} s" for s in result["segments"])
    )
    print(
        f"  peak    clip {result['peak']['clip']}, frame {result['peak']['frame']} at {result['peak']['time_s']:.2f} s"
    )
    for image in result["attention_maps"]:
        print(f"  image   {image['url']}")
    if len(people) > 1:
        for p in people:
            print(
                f"person {p['id']}: "
                + (
                    f"{p['expression']} (confidence {p['confidence']:.2f})"
                    if p["scored"]
                    else "not scored (never seen for a whole clip)"
                )
                + f", seen {p['first_s']:.2f}-{p['last_s']:.2f} s in {p['frames']} frames"
            )
            if p["scored"]:
                b = p["box_at_peak"]
                print(
                    "  timeline "
                    + ", ".join(
                        f"{s['label'] or 'no face'} {s['start_s']:.2f}-{s['end_s']:.2f} s" for s in p["segments"]
                    )
                )
                print(
                    f"  peak    frame {p['peak']['frame']} at {p['peak']['time_s']:.2f} s, face at x {b['x']:.0f}, y {b['y']:.0f}, "
                    f"{b['width']:.0f} px"
                )
            for image in p["attention_maps"] + ([p["thumbnail"]] if p.get("thumbnail") else []):
                print(f"  image   {image['url']}")
    if result["faces"].get("dropped"):
        print(
            f"  ({result['faces']['dropped']} more faces in a frame were not followed: RAMFER_MAX_FACES is {result['faces']['max_faces']})"
        )
    print("  timings " + ", ".join(f"{k} {ms:.0f} ms" for k, ms in t.items()))
    print(f"  model   {result['model']['variant']} {result['model']['sha256'][:12]}")


def cmd_settings(args) -> None:
    """The settings in effect here (secrets hidden), or their reference as Markdown (docs/configuration.md's table)."""
    from service.settings import Settings, markdown_reference, settings_in_effect, with_reference

    if args.write:
        path = Path(args.write)
        path.write_text(with_reference(path.read_text()))
        print(f"{path}: the settings' table written")
    elif args.markdown:
        print(markdown_reference())
    else:
        rows = settings_in_effect(Settings())
        width = max(len(name) for name, _ in rows)
        for name, value in rows:
            print(f"{name:<{width}}  {value}")


def cmd_health(args) -> None:
    """Exit 0 when healthy (for container healthchecks): the API answers /healthz, or, with
    --worker (--live), Redis answers and a worker (a live worker) of this host is registered (it has loaded the model)."""
    import socket
    import urllib.request

    from service.settings import Settings

    try:
        if args.live:
            import redis

            from service.live import prefix
            from service.settings import Settings

            settings = Settings()
            names = redis.Redis.from_url(settings.redis_url, socket_timeout=5).zrangebyscore(
                f"{prefix(settings)}:workers", time.time(), "+inf"
            )
            host = socket.gethostname()
            if not any(n.decode().startswith(host + ":") for n in names):
                sys.exit(f"no live worker registered from {host}")
        elif args.worker:
            from service import jobs

            settings = Settings()
            queue = jobs.make_queue(jobs.connect(settings), settings)
            host = socket.gethostname()
            if not any(w.hostname == host for w in jobs.live_workers(queue)):
                sys.exit(f"no worker registered from {host}")
        else:
            urllib.request.urlopen(f"http://127.0.0.1:{args.port}/healthz", timeout=4)
    except Exception as e:
        sys.exit(f"unhealthy: {e}")


def add_video_arguments(p: argparse.ArgumentParser, out: str) -> None:
    p.add_argument("videos", nargs="+", metavar="VIDEO", help="video files, or folders of them (their sub-folders too)")
    shown = p.add_mutually_exclusive_group()
    shown.add_argument("--json", action="store_true", help="one video: print the full result as JSON")
    shown.add_argument(
        "--csv", action="store_true", help="one video: print its timeline as CSV (a row per person per clip)"
    )
    p.add_argument("--out", default=None, metavar="DIR", help=out)


def main(argv=None) -> None:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args.run(args)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m service", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    add_server_commands(sub)
    add_video_commands(sub)
    add_admin_commands(sub)
    return ap


def add_server_commands(sub) -> None:
    """serve, worker, live-worker: the processes of a deployment."""
    p = sub.add_parser(
        "serve", help="the API; with no RAMFER_REDIS_URL (or REDIS_URL) also an embedded Redis and local workers"
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--workers", type=int, default=None, help="local worker processes (embedded mode; default $RAMFER_WORKERS or 1)"
    )
    p.set_defaults(run=cmd_serve)
    p = sub.add_parser(
        "worker", help="one RQ worker process for RAMFER_REDIS_URL (or REDIS_URL) (loads the model once)"
    )
    p.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    p.set_defaults(run=cmd_worker)
    p = sub.add_parser(
        "live-worker",
        help="one live worker process for RAMFER_REDIS_URL (or REDIS_URL): serves WS /live sessions (loads the model once)",
    )
    p.set_defaults(run=cmd_live_worker)


def add_video_commands(sub) -> None:
    """live, predict, submit: a video or a camera read, here or by a running service."""
    p = sub.add_parser(
        "live",
        help="stream a video file (at its own pace) or a camera (its number) to a running service, print labels as they come",
    )
    p.add_argument("source", help="a video file, or a camera's number (0: the first)")
    p.add_argument("--url", required=True, help="the service, e.g. http://127.0.0.1:8000")
    p.add_argument("--fps", type=float, default=15.0, help="frames sent a second (the source's are skipped to match)")
    p.add_argument("--seconds", type=float, default=None, help="stop after this long (a camera: default forever)")
    p.add_argument("--api-key", default=None, help="the service's API key (default: $RAMFER_API_KEY)")
    p.add_argument("--json", action="store_true", help="print every message as a JSON line")
    p.set_defaults(run=cmd_live)
    p = sub.add_parser(
        "predict", help="analyse a video in this process, no server; several videos or a folder: a batch into --out"
    )
    add_video_arguments(
        p,
        out="one video: the folder for its attention PNGs (default: a new temporary folder); "
        "several or a folder: the batch's folder (a folder per video, summary.csv)",
    )
    p.add_argument("--model", default=None, help="checkpoint folder (default: $RAMFER_MODEL_DIR or the bundled model)")
    p.add_argument("--quiet", action="store_true", help="no progress bar (a batch)")
    p.set_defaults(run=cmd_predict)
    p = sub.add_parser(
        "submit",
        help="send a video to a running service (local or remote), show progress, print the result; "
        "several videos or a folder: a batch into --out",
    )
    add_video_arguments(p, out="several videos or a folder: the batch's folder (a folder per video, summary.csv)")
    p.add_argument("--url", required=True, help="the service, e.g. http://127.0.0.1:8000")
    p.add_argument("--api-key", default=None, help="sent as 'Authorization: Bearer KEY' (default: $RAMFER_API_KEY)")
    p.add_argument("--wait", type=float, default=0.0, help="seconds the upload may wait for the result before polling")
    p.add_argument("--timeout", type=float, default=None, help="give up after this many seconds of polling")
    p.add_argument(
        "--retries", type=int, default=8, help="times a busy (429) or unavailable (503) service is asked again"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=cmd_submit)


def add_admin_commands(sub) -> None:
    """settings, health: what a deployment is set to, and whether it is up."""
    p = sub.add_parser(
        "settings",
        help="print every setting (RAMFER_* variables) and its value here, secrets hidden; "
        "--markdown: their reference (docs/configuration.md)",
    )
    p.add_argument("--markdown", action="store_true", help="print the settings' reference table as Markdown")
    p.add_argument(
        "--write",
        default=None,
        metavar="FILE",
        help="replace the table between <!-- settings:start --> and <!-- settings:end --> in FILE",
    )
    p.set_defaults(run=cmd_settings)
    p = sub.add_parser("health", help="exit 0 if the API (or, with --worker, this host's worker) is healthy")
    p.add_argument("--worker", action="store_true")
    p.add_argument(
        "--live", action="store_true", help="a live worker of this host is registered (it has loaded the model)"
    )
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(run=cmd_health)


if __name__ == "__main__":
    main()
