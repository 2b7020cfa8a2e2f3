"""Every setting of the service, read from the environment (or a .env file) in one place."""

from __future__ import annotations

import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from training.bundled import SERVED_CHECKPOINT, checkpoint_folder

DEFAULT_MODEL_DIR = SERVED_CHECKPOINT
DEFAULT_CHECK_VIDEO = Path(__file__).resolve().parent / "assets" / "check-face.mp4"


def secrets_dir() -> str | None:
    """Files named like a setting (e.g. /run/secrets/s3_secret_access_key, Docker's and Kubernetes'
    secrets) are read as that setting; SECRETS_DIR moves the folder."""
    folder = os.environ.get("SECRETS_DIR", "/run/secrets")
    return folder if os.path.isdir(folder) else None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", secrets_dir=secrets_dir())

    @field_validator("model_dir", mode="before")
    @classmethod
    def _bundled_name(cls, value):
        return checkpoint_folder(value)

    # Where things are
    redis_url: str | None = Field(None, description="Redis for the job queue; unset: `serve` starts an embedded one")
    model_dir: Path = Field(
        DEFAULT_MODEL_DIR,
        description="checkpoint folder (model.safetensors, config.json, MODEL_CARD.md), or the name of one the package "
        "carries: default (trained with FER+'s web faces), synthetic (rendered faces only), synthetic-7class",
    )
    storage_dir: Path = Field(
        Path(tempfile.gettempdir()) / "ramfer-storage",
        description="STORAGE_BACKEND=local: uploads and result images; API and workers must share it (a volume in compose)",
    )
    # Uploads and result images in an S3-compatible bucket instead: nothing shared between the API
    # and the workers but Redis and the bucket (workers on other machines; service/storage.py).
    storage_backend: Literal["local", "s3"] = "local"
    s3_endpoint_url: str | None = Field(None, description="e.g. http://seaweedfs:8333; unset: AWS S3")
    s3_bucket: str = "ramfer"
    s3_region: str = "us-east-1"
    s3_access_key_id: SecretStr | None = Field(None, description="unset: boto3's own chain (AWS_* variables, ~/.aws, instance role)")
    s3_secret_access_key: SecretStr | None = None
    s3_addressing_style: Literal["path", "virtual", "auto"] = "path"  # path: what self-hosted S3 servers expect
    s3_timeout_s: float = 3.0  # connect timeout: an unreachable storage makes a quick 503, not a hang
    s3_create_bucket: bool = False  # create the bucket at start when missing (a fresh compose stack)
    s3_presigned_urls: bool = Field(
        False, description="attention images: redirect (307) to a presigned URL of the bucket instead of streaming them through the API",
    )
    s3_public_endpoint_url: str | None = Field(None, description="the storage's address as callers reach it, for presigned URLs; unset: S3_ENDPOINT_URL")
    s3_url_ttl_s: int = 900  # lifetime of a presigned URL
    queue_name: str = "ramfer"

    # Limits on what is accepted (checked before any frame is decoded)
    max_upload_mb: float = 200.0
    max_duration_s: float = 600.0
    max_frames: int = 18_000  # decoding stops here: 10 min at 30 fps
    max_pixels: int = 3840 * 2160  # per frame: 4K
    max_wait_s: float = 120.0  # the most a POST /predict?wait= may hold the connection

    # Jobs
    job_timeout_s: int = 600
    result_ttl_s: int = 3600  # finished jobs, their results and images are kept this long
    keep_videos: bool = Field(True, description="a finished job's uploaded video is kept as long as its images, for the "
                                               "page's player (GET /jobs/{id}/video); false: deleted when its job ends")
    failure_ttl_s: int = 3600
    heartbeat_s: int = 5  # a busy worker proves it is alive this often ...
    heartbeat_grace_s: int = 30  # ... and its job is declared lost after this much silence more

    # Model and pipeline
    device: str | None = Field(None, description="cuda, cpu, ...; unset: cuda when present")
    batch_size: int = 32  # clips per forward pass
    inference_bf16: bool = True  # bf16 autocast where the hardware has it: 1.5x model speed, 99.5 % of clip labels and every vote as fp32 (docs/performance.md)
    inference_runtime: Literal["auto", "torch", "onnx"] = Field(
        "auto",
        description="what runs the network and the face detector on a CPU: auto (ONNX Runtime on their export, made "
        "once into the cache when the checkpoint has none, where it can, else PyTorch; batches of clips stay on "
        "PyTorch where INFERENCE_BF16 runs natively, as it is faster there), torch, or onnx (ONNX Runtime for all "
        "of it, or the worker does not start). CUDA always runs PyTorch",
    )
    detect_every: int = 1  # run the face detector on every k-th frame (boxes are smoothed between)
    # Every face of a video is followed (training/tracks.py) and answered for (the result's `people`).
    max_faces: int = Field(8, ge=1, description="faces followed at once; of more in a frame the largest are "
                                              "(the result's faces.dropped says how many were left out)")
    min_face_px: float = Field(24.0, ge=1, description="faces smaller than this (the detector's box side, in frame "
                                                      "pixels) are not followed: half the network's 48 px input")
    track_gap_s: float = Field(1.0, gt=0, description="a person unseen for longer than this is gone; if they come "
                                                     "back they are a new person (no re-identification)")
    # The answer and the timeline from evidence over time, not from scattered single clips: chosen on
    # talking videos of London people the held-out evaluation does not use (docs/real-faces.md,
    # "The answer from evidence over time"). VOTE_SMOOTH_CLIPS=0 with VOTE_MIN_CLIPS=1 is the paper's
    # plain vote of every clip (what `training cv` reports).
    vote_smooth_clips: int = Field(
        1, ge=0,
        description="each clip's probabilities are averaged with its neighbours' within +-N clips before it is "
        "labelled (0: every clip as it is)",
    )
    vote_min_clips: int = Field(
        5, ge=1,
        description="8-class models: an expression outvotes neutral clips only where it holds this many consecutive "
        "clips (1: any expressive clip does); the timeline has no run shorter than this",
    )
    neutral_bias: float | None = Field(
        None, ge=0,
        description="8-class models: neutral's probability is weighed by exp(N) against the expressions' before "
        "each clip is labelled: a prior for neutral, which real video shows more often than some training data "
        "did (0: the network's own). Unset: the checkpoint's own choice (config.json's decision; 2.5 for "
        "checkpoints that record none)",
    )
    flip_average: bool = Field(
        False,
        description="average each clip's probabilities with its mirror image's (twice the model's work; "
        "docs/real-faces.md measures it)",
    )
    check_video: Path = Field(
        DEFAULT_CHECK_VIDEO,
        description="the clip a worker analyses at start, before it registers (service/selfcheck.py); a worker that cannot never registers",
    )
    display_size: int = 128  # side of the face crops attention maps are drawn on
    torch_threads: int | None = None

    # Access and backpressure (docs/security.md)
    api_keys: list[str] = Field(
        default_factory=list,
        description='JSON list, e.g. ["k1","k2"]; when set, every route but /, /healthz and /readyz needs "Authorization: Bearer <key>"',
    )
    cors_origins: list[str] = Field(default_factory=list, description="origins allowed to call the API from a browser; empty: CORS off")
    max_queued_jobs: int = 100  # beyond this, POST /predict answers 429 with Retry-After ...
    queue_full_retry_after_s: int = 10  # ... of this many seconds
    rate_limit_per_minute: int = 0  # uploads per client (API key, else IP) per minute; 0: no limit

    # Live sessions (WS /live, service/live.py): a camera's frames analysed as they come, by live
    # workers (`python -m service live-worker`, service/live_worker.py), through Redis.
    live_max_sessions: int = Field(8, ge=0, description="live sessions at once in the whole service; one more is refused (close code 4429)")
    live_sessions_per_worker: int = Field(2, ge=1, description="live sessions one live worker serves at once (its frames, detector and model share one core's time)")
    live_buffer_frames: int = Field(
        4, ge=1, description="frames of a session waiting for its worker; when more arrive the oldest are dropped "
        "(at 15 fps, 4 frames: at most ~0.27 s behind the camera), and the client is told how many")
    live_max_frame_kb: float = Field(512.0, gt=0, description="a frame (JPEG) larger than this closes the session (4413)")
    live_idle_timeout_s: float = Field(10.0, gt=0, description="a session whose client sends nothing for this long is closed (4408); also the time for the first message")
    live_send_timeout_s: float = Field(10.0, gt=0, description="a client that does not take a message within this long (it stopped reading) is closed (4408)")
    live_start_timeout_s: float = Field(10.0, gt=0, description="how long a new session waits for a live worker with room before it is refused (4503)")
    live_worker_grace_s: float = Field(5.0, gt=0, description="a live worker silent this long is taken for dead: its sessions are told and closed (4503)")
    live_decide_every_clips: int = Field(4, ge=1, description="the decided expression (the service's decision rule over live_window_s) is sent every this many clips")
    live_window_s: float = Field(4.0, gt=0, description="the decided expression reads the clips of the last this many seconds")

    # serve
    workers: int = 1  # worker processes `serve` starts when it runs Redis itself
    live_workers: int = 1  # live worker processes `serve` starts when it runs Redis itself (0: no Live view)
    serve_pid: int | None = Field(
        None, description="set by `serve` for the workers it starts: a worker stops when that process is gone, "
        "however it went (service/lifetime.py)")

    @property
    def uploads_dir(self) -> Path:
        return self.storage_dir / "uploads"

    @property
    def results_dir(self) -> Path:
        return self.storage_dir / "results"

    @property
    def live_max_frame_bytes(self) -> int:
        return int(self.live_max_frame_kb * 1024)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


@lru_cache
def get_settings() -> Settings:
    return Settings()
