"""The RQ worker that holds the model, and the job it runs.

RQ's default worker forks a child per job; a fork after torch has run can hang, and CUDA cannot
cross a fork. So this worker never forks (RQ's SimpleWorker): the checkpoint is loaded once
when the process starts, warmed up, and every job runs in that process. While a job runs, a
thread sends heartbeats every `heartbeat_s`; if the process dies, the heartbeats stop and
after `heartbeat_grace_s` more the job is marked failed ("worker_lost") instead of hanging as
"started" (RQ's StartedJobRegistry cleanup, which the API runs when asked about such a job).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from pathlib import Path

from rq import get_current_job
from rq.serializers import JSONSerializer
from rq.worker import SimpleWorker, WorkerStatus

from service.jobs import DURATION_BUCKETS, STATS, connect, make_queue
from service.settings import Settings, get_settings

log = logging.getLogger(__name__)

_predictor = None  # the process's model, set by ModelWorker (or `load_predictor` in tests/CLI)
_checked = False  # the self-check passed in this process
_settings: Settings | None = None  # the settings of this process's ModelWorker (jobs read them)
_storage = None  # the process's storage client (boto3's holds a connection pool)


def use_settings(settings: Settings) -> None:
    """The settings (and so the storage) jobs in this process run with."""
    global _settings, _storage
    if settings is not _settings:
        _settings, _storage = settings, None


def job_settings() -> Settings:
    return _settings or get_settings()


def get_storage(settings: Settings):
    global _storage
    if _storage is None:
        from service.storage import make_storage

        _storage = make_storage(settings)
    return _storage


def load_predictor(settings: Settings, check: bool = False, flag: str | None = None):
    """Load the checkpoint into this process (once) and warm it up; with `check`, also prove (once)
    that a video can be analysed end to end (service.selfcheck; raises SelfCheckError). A checkpoint
    or detector weights that cannot be loaded raise ModelUnavailable, whose one line names the
    setting (`flag`: the command-line option that chose the folder, if one did)."""
    global _predictor, _checked
    if _predictor is None:
        import torch

        from service.pipeline import Predictor
        from service.selfcheck import ModelUnavailable, model_unavailable
        from training.bundled import DetectorError
        from training.checkpoint import CheckpointError
        from training.runtime import RuntimeUnavailable

        if settings.torch_threads:
            torch.set_num_threads(settings.torch_threads)
        start = time.perf_counter()
        try:
            predictor = Predictor.from_settings(settings)
        except (CheckpointError, DetectorError) as e:
            raise model_unavailable(settings, e, flag) from None
        except RuntimeUnavailable as e:
            raise ModelUnavailable(f"RAMFER_INFERENCE_RUNTIME=onnx: {e} (auto falls back to PyTorch)") from None
        predictor.warm_up()
        _predictor = predictor
        log.info(
            "model %s (%s) loaded on %s (%s; face detector %s) in %.1f s",
            _predictor.variant,
            _predictor.sha256[:12],
            _predictor.device,
            _predictor.runtime,
            _predictor.detector.net.runtime,
            time.perf_counter() - start,
        )
    if check and not _checked:
        from service.selfcheck import self_check

        self_check(_predictor, settings)
        _checked = True
    return _predictor


class ModelWorker(SimpleWorker):
    """A non-forking worker with the model loaded and the self-check passed before it registers
    (so a registered worker is one that has analysed a video) and heartbeats during jobs."""

    def __init__(self, queues, settings: Settings, **kwargs):
        self.settings = settings
        self.heartbeat_grace = settings.heartbeat_grace_s
        use_settings(settings)
        load_predictor(settings, check=True)
        super().__init__(queues, serializer=JSONSerializer, job_monitoring_interval=settings.heartbeat_s, **kwargs)

    def subscribe(self):
        """RQ's listener for worker commands, reading at most a second at a time: RQ's own reads for 60 s,
        and its shutdown (unsubscribe, then close) waits for that read, so a stopping worker hung up to a minute."""
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(
            sleep_time=1, daemon=True, exception_handler=self._pubsub_exception_handler
        )

    def get_heartbeat_ttl(self, job, working_time: float = 0.0) -> int:
        # RQ adds a fixed 60 s; the grace is a setting here so a lost job surfaces sooner.
        interval = self.job_monitoring_interval
        if job.timeout and job.timeout > 0:
            interval = min(interval, max(job.timeout - working_time, 0))
        return int(interval) + self.heartbeat_grace

    def execute_job(self, job, queue):
        execution = self.prepare_execution(job)
        done = threading.Event()

        def beat():
            while not done.wait(self.job_monitoring_interval):
                try:
                    self.maintain_heartbeats(job, execution)
                except Exception:  # a missed beat is not worth killing the job for
                    log.exception("heartbeat failed")

        beater = threading.Thread(target=beat, name="heartbeat", daemon=True)
        beater.start()
        started = time.perf_counter()
        try:
            ok = self.perform_job(job, queue, execution)
        finally:
            done.set()
            beater.join()
        record_duration(self.connection, time.perf_counter() - started, ok)
        self.set_state(WorkerStatus.IDLE)


def record_duration(redis, seconds: float, ok: bool) -> None:
    """Cluster-wide counters in Redis, so the API's /metrics covers every worker."""
    with redis.pipeline() as p:
        p.hincrby(STATS, "finished" if ok else "failed", 1)
        p.hincrbyfloat(STATS, "seconds_sum", seconds)
        for le in DURATION_BUCKETS:
            if seconds <= le:
                p.hincrby(STATS, f"le_{le}", 1)
        p.execute()


def analyse_job(upload: str, results: str) -> dict:
    """The job: analyse one uploaded video (a storage key), put its attention PNGs under the
    `results` prefix of the storage, return the result.

    With S3 the video is downloaded to a private temporary folder first (FFmpeg reads files) and
    the PNGs are rendered to another; both are removed when the job ends, however it ends. When the
    storage cannot be reached the job fails with "storage_unavailable" (not retried: the client is
    told to submit again, and the API answers 503 to new uploads until the storage is back)."""
    import tempfile

    from service import jobs
    from service.pipeline import analyse_video
    from service.storage import StorageUnavailable
    from training.video import VideoError

    job = get_current_job()
    settings = job_settings()
    storage = get_storage(settings)

    def report(progress: dict) -> None:
        job.meta["progress"] = progress
        job.save_meta()

    def fail(error: dict) -> None:
        job.meta["error"] = error
        job.meta["progress"] = {"stage": "failed"}
        job.save_meta()

    try:
        report({"stage": "analysing", "frames_done": 0})
        with storage.local_copy(upload) as video, tempfile.TemporaryDirectory(prefix="ramfer-render-") as out:
            result = analyse_video(video, load_predictor(settings), settings, Path(out), on_progress=report)
            for name in sorted({image["name"] for image in jobs.result_images(result)}):
                storage.put_file(f"{results}/{name}.png", Path(out) / f"{name}.png")
        report({"stage": "done", "percent": 100.0})
        return result
    except VideoError as e:
        fail({"code": e.code, "message": e.message})
        raise
    except StorageUnavailable as e:
        log.error("job %s: storage: %s", job.id, e)
        fail(jobs.STORAGE_DOWN)
        raise
    except FileNotFoundError as e:
        if not getattr(e, "storage_key", None):  # a file of the pipeline's own, not the upload: an internal error
            raise
        log.error("job %s: the upload %s is not in the storage", job.id, e.storage_key)
        fail(jobs.UPLOAD_MISSING)
        raise
    finally:
        # A finished job's video stays for the page's player, as long as its images (the expiry cleanup
        # removes both); any other's is not kept once its job has ended.
        if not (settings.keep_videos and job.meta.get("progress", {}).get("stage") == "done"):
            try:
                storage.delete(upload)
            except StorageUnavailable as e:  # the expiry cleanup removes it later
                log.warning("job %s: upload not deleted: %s", job.id, e)


def run_worker(settings: Settings, burst: bool = False) -> None:
    from service.selfcheck import ModelUnavailable, SelfCheckError

    redis = connect(settings)
    try:
        worker = ModelWorker([make_queue(redis, settings)], settings, connection=redis)
    except ModelUnavailable as e:  # a model that cannot be loaded fails the check too: one line, no traceback
        log.error("worker self-check failed, not registering: %s", e)
        sys.exit(3)
    except SelfCheckError as e:  # the traceback of an unexpected error helps whoever debugs it
        log.error("worker self-check failed, not registering: %s", e, exc_info=e.__cause__ is not None)
        sys.exit(3)
    worker.work(burst=burst, with_scheduler=False, logging_level="INFO")
