"""Every setting of the service, described once, here: read from `RAMFER_<NAME>` environment variables, a .env
file or secrets files (docs/configuration.md, whose table `python -m service settings --write
docs/configuration.md` makes from this class).

The names before the RAMFER_ prefix (`MODEL_DIR`, `WORKERS`, ...) are still read, each with a warning naming its
new name (OldNames below); `REDIS_URL` is read without one: the `serve` and `worker` commands have always
honoured it, and it stays an accepted alias of `RAMFER_REDIS_URL`.

Read elsewhere, on purpose, and already prefixed: `RAMFER_API_KEY` (the key the client commands, `submit` and
`live`, send to a service: the caller's, not the service's), `RAMFER_CACHE` (training/bundled.py: the cache
training and the CPU runtime's exports share, needed where no Settings exist), `RAMFER_LONDON_DIR` and
`RAMFER_BACKGROUNDS_DIR` (training/synthesis: where a user's copies of training data sets are, the defaults of
command-line flags of the training tools, not settings of the service). None of these names may become a
field's (NOT_SETTINGS; tests/test_settings.py checks).
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

from training.bundled import SERVED_CHECKPOINT, checkpoint_folder

log = logging.getLogger("service.settings")

DEFAULT_MODEL_DIR = SERVED_CHECKPOINT
DEFAULT_CHECK_VIDEO = Path(__file__).resolve().parent / "assets" / "check-face.mp4"

ENV_PREFIX = "RAMFER_"
# Old names read without a warning: part of the service's outside contract (the `serve` and `worker` commands honour it)
ACCEPTED_ALIASES = {"redis_url": "REDIS_URL"}
# The RAMFER_ variables read outside Settings, which no field may take the name of: the module docstring's, the
# secrets folder's (secrets_dir), the compose files' own (RAMFER_HOST), the benchmarks' and the test suite's
NOT_SETTINGS = (
    "RAMFER_API_KEY",
    "RAMFER_CACHE",
    "RAMFER_LONDON_DIR",
    "RAMFER_BACKGROUNDS_DIR",
    "RAMFER_SECRETS_DIR",
    "RAMFER_HOST",
    "RAMFER_CANADA_DIR",
    "RAMFER_FER_WEIGHTS",
    "RAMFER_KEEP_TMP",
    "RAMFER_REQUIRE_BROWSER",
    "RAMFER_LIVE_LOG",
)
SECRETS_DIR = "/run/secrets"


def env_name(field: str) -> str:
    """A setting's environment variable: `model_dir` -> `RAMFER_MODEL_DIR`."""
    return ENV_PREFIX + field.upper()


def old_name_warning(message: str) -> None:
    """An old name in use: logged (what an operator sees) and a DeprecationWarning (what tests and tools see)."""
    log.warning(message)
    warnings.warn(message, DeprecationWarning, stacklevel=3)


def secrets_dir() -> str | None:
    """The folder of secrets files (Docker's and Kubernetes' secrets: a file named like a setting, e.g.
    /run/secrets/ramfer_s3_secret_access_key, is read as that setting): $RAMFER_SECRETS_DIR, else
    /run/secrets; None when it is not a folder. Read when Settings are made, not when this module is imported."""
    folder = os.environ.get("RAMFER_SECRETS_DIR")
    if folder is None and "SECRETS_DIR" in os.environ:
        folder = os.environ["SECRETS_DIR"]
        old_name_warning(
            "SECRETS_DIR (environment) is an old name: rename it RAMFER_SECRETS_DIR (the old names will stop working)"
        )
    folder = folder or SECRETS_DIR
    return folder if os.path.isdir(folder) else None


class OldNames(PydanticBaseSettingsSource):
    """The settings under their names from before the RAMFER_ prefix (`MODEL_DIR`; a .env line `MODEL_DIR=...`;
    a secrets file `model_dir`), read from one place right after the new names of the same place: each one found
    is honoured with a warning that names its new name, and ignored, with a warning, where the new name is given
    there too. `REDIS_URL` (ACCEPTED_ALIASES) without a warning."""

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        old: PydanticBaseSettingsSource,
        new: PydanticBaseSettingsSource,
        where: str,
    ):
        super().__init__(settings_cls)
        self.old, self.new, self.where = old, new, where

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads every field at once through `old`

    def __call__(self) -> dict[str, Any]:
        found = {name: value for name, value in self.old().items() if name in self.settings_cls.model_fields}
        if not found:
            return {}
        given = self.new()
        kept = {}
        for name, value in found.items():
            old, new = name.upper(), env_name(name)
            if name in given:
                if name not in ACCEPTED_ALIASES:
                    old_name_warning(
                        f"{old} ({self.where}) is an old name and is ignored: {new} is set there too; remove {old}"
                    )
                continue
            if name not in ACCEPTED_ALIASES:
                old_name_warning(
                    f"{old} ({self.where}) is an old name: rename it {new} (the old names will stop working)"
                )
            kept[name] = value
        return kept


class Settings(BaseSettings):
    """The service's settings. Each field's environment variable is RAMFER_ and its name in capitals; its
    description is the documentation (docs/configuration.md is made from it). `section` starts a group of
    the table there; `shown_default` is the default as the table shows it, where the value itself depends
    on the machine."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", env_file_encoding="utf-8", extra="ignore")

    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ):
        """Keyword arguments, then the RAMFER_ names (the environment, then .env, then secrets files), then
        the old names in the same order (OldNames): a RAMFER_ name wherever it is given beats an old one."""
        folder = file_secret_settings.secrets_dir if file_secret_settings.secrets_dir is not None else secrets_dir()
        secrets = SecretsSettingsSource(settings_cls, secrets_dir=folder)
        env_file = dotenv_settings.env_file
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            secrets,
            OldNames(settings_cls, EnvSettingsSource(settings_cls, env_prefix=""), env_settings, "environment"),
            OldNames(
                settings_cls,
                DotEnvSettingsSource(settings_cls, env_file=env_file, env_prefix=""),
                dotenv_settings,
                f"in {env_file}" if isinstance(env_file, (str, os.PathLike)) else "in the .env files",
            ),
            OldNames(
                settings_cls,
                SecretsSettingsSource(settings_cls, secrets_dir=folder, env_prefix=""),
                secrets,
                f"a file in {folder}",
            ),
        )

    @field_validator("model_dir", mode="before")
    @classmethod
    def _bundled_name(cls, value):
        return checkpoint_folder(value)

    # Redis and the model
    redis_url: str | None = Field(
        None,
        json_schema_extra={"section": "Redis and the model"},
        description="The Redis of the job queue, which the API and every worker share, e.g. "
        "`redis://:PASSWORD@host:6379/0` (`rediss://` for TLS). Unset: `serve` starts an embedded Redis, and "
        "workers beside the API, and removes them when it stops ([below](#without-a-redis-what-serve-keeps-and-removes))",
    )
    queue_name: str = Field(
        "ramfer",
        description="The job queue's name in Redis, and the start of the live sessions' keys there: "
        "services that share one Redis keep apart by it",
    )
    model_dir: Path = Field(
        DEFAULT_MODEL_DIR,
        json_schema_extra={"shown_default": "`default`"},
        description="The checkpoint folder (`model.safetensors`, `config.json`, `MODEL_CARD.md`), or the name of one "
        "the package carries: `default` (trained with FER+'s web faces), `synthetic` (rendered faces only), "
        "`synthetic-7class`",
    )

    # Storage: a folder the API and the workers share, or an S3-compatible bucket (service/storage.py)
    storage_backend: Literal["local", "s3"] = Field(
        "local",
        json_schema_extra={"section": "Storage"},
        description="Where uploads and result images are kept: `local` (the `RAMFER_STORAGE_DIR` folder) or `s3` "
        "(an S3-compatible bucket: nothing is shared between the API and the workers but Redis and the bucket, "
        "so workers can run on other machines)",
    )
    storage_dir: Path = Field(
        Path(tempfile.gettempdir()) / "ramfer-storage",
        json_schema_extra={"shown_default": "`ramfer-storage` in the temporary folder"},
        description="`RAMFER_STORAGE_BACKEND=local`: the folder of uploads and result images, which the API and every "
        "worker must share (a volume in compose). `serve` with an embedded Redis and this unset keeps them in "
        "that Redis's temporary folder, removed with it",
    )
    s3_endpoint_url: str | None = Field(None, description="The S3 server, e.g. `http://seaweedfs:8333`; unset: AWS S3")
    s3_bucket: str = Field("ramfer", description="The bucket of uploads and result images")
    s3_region: str = Field("us-east-1", description="The bucket's region")
    s3_access_key_id: SecretStr | None = Field(
        None,
        description="The storage's access key; unset: boto3's own chain (`AWS_*` variables, `~/.aws`, an "
        "instance role). Never logged; best given as a secrets file",
    )
    s3_secret_access_key: SecretStr | None = Field(
        None,
        description="The secret of `RAMFER_S3_ACCESS_KEY_ID`. Never logged; best given as a secrets file",
    )
    s3_addressing_style: Literal["path", "virtual", "auto"] = Field(
        "path",
        description="How bucket URLs are addressed: `path` (what self-hosted S3 servers expect), `virtual` "
        "or `auto` (boto3's choice)",
    )
    s3_timeout_s: float = Field(
        3.0,
        description="Seconds to connect to the storage: an unreachable storage makes a quick 503, not a hang",
    )
    s3_create_bucket: bool = Field(
        False,
        description="The API creates the bucket at start when it is missing (a fresh compose stack)",
    )
    s3_presigned_urls: bool = Field(
        False,
        description="Attention images and a job's video: answer 307 with a presigned URL of the bucket instead "
        "of streaming them through the API",
    )
    s3_public_endpoint_url: str | None = Field(
        None,
        description="The storage's address as callers reach it, which presigned URLs are signed for; unset: "
        "`RAMFER_S3_ENDPOINT_URL`",
    )
    s3_url_ttl_s: int = Field(900, description="Seconds a presigned URL is valid")

    # Limits on what is accepted (checked before any frame is decoded)
    max_upload_mb: float = Field(
        200.0,
        json_schema_extra={"section": "Limits on uploads"},
        description="The largest upload accepted, in MiB (larger: 413)",
    )
    max_duration_s: float = Field(600.0, description="The longest video accepted, in seconds (longer: 413)")
    max_frames: int = Field(18_000, description="Decoding stops after this many frames: 10 minutes at 30 fps")
    max_pixels: int = Field(3840 * 2160, description="The most pixels a frame may have (more: 413): 4K, 3840×2160")
    max_wait_s: float = Field(
        120.0,
        description="The most seconds a `POST /predict?wait=` may hold the connection for its result",
    )

    # Jobs
    job_timeout_s: int = Field(
        600,
        json_schema_extra={"section": "Jobs"},
        description="Seconds a job may run before it is stopped and failed; a job no worker takes within this long expires",
    )
    result_ttl_s: int = Field(3600, description="Seconds finished jobs, their results and images are kept")
    keep_videos: bool = Field(
        True,
        description="A finished job's uploaded video is kept as long as its images, for the page's player "
        "(`GET /jobs/{id}/video`); false: deleted when its job ends",
    )
    failure_ttl_s: int = Field(3600, description="Seconds failed jobs and their errors are kept")
    heartbeat_s: int = Field(5, description="A busy worker proves it is alive every this many seconds ...")
    heartbeat_grace_s: int = Field(
        30,
        description="... and its job is declared lost after this many seconds more of silence",
    )

    # Model and runtime
    device: str | None = Field(
        None,
        json_schema_extra={"section": "Model and runtime"},
        description="Where the network runs: `cuda`, `cpu`, ...; unset: CUDA when present",
    )
    torch_threads: int | None = Field(
        None,
        description="PyTorch's threads in a worker; unset: PyTorch's own choice, except in the workers `serve` "
        "starts, which share the cores",
    )
    batch_size: int = Field(32, description="Clips per forward pass")
    inference_bf16: bool = Field(
        True,
        description="bf16 autocast where the hardware has it: 1.5x the model's speed, 99.5 % of clip labels and "
        "every vote as fp32 (docs/performance.md); the compose files turn it off on the GPU, where this small network "
        "ran slower with it",
    )
    inference_runtime: Literal["auto", "torch", "onnx"] = Field(
        "auto",
        description="What runs the network and the face detector on a CPU: `auto` (ONNX Runtime, on their exports: the "
        "served checkpoint's come with the package; another checkpoint's are made once into the cache, "
        "`$RAMFER_CACHE` or `~/.cache/ramfer`, where the `onnx` extra is installed, or beforehand with "
        "`python -m training export --model DIR`; else PyTorch; without int8 exports (`RAMFER_INFERENCE_INT8`), batches "
        "of clips stay on PyTorch where `RAMFER_INFERENCE_BF16` runs natively, as it is faster there), `torch`, or "
        "`onnx` (ONNX Runtime for all of it, or the worker does not start). CUDA always runs PyTorch "
        '(docs/performance.md, "The CPU runtime")',
    )
    inference_int8: bool = Field(
        False,
        description="On ONNX Runtime, the network's convolutions in int8 where the checkpoint carries int8 exports "
        "(the served one does; `python -m training export --int8 DATA` makes them for another): the network 1.8x "
        "faster a clip at a time and 1.9x on a batch than fp32 (1.2x bf16 where the CPU has it), at a cost: 2 of 64 "
        'held-out talking videos answered otherwise, 99.2 % of clip labels the same (docs/performance.md, "int8 '
        'weights"); off by default until it keeps every answer',
    )
    check_video: Path = Field(
        DEFAULT_CHECK_VIDEO,
        json_schema_extra={"shown_default": "the package's `service/assets/check-face.mp4`"},
        description="The clip a worker analyses at start, before it registers (service/selfcheck.py); a worker that "
        "cannot never registers",
    )

    # Faces: every face of a video is followed (training/tracks.py) and answered for (the result's `people`)
    detect_every: int = Field(
        2,
        ge=1,
        json_schema_extra={"section": "Faces"},
        description="The face detector runs on every k-th frame, each face's box between two detections the mean of "
        "those around it: 2 costs 0.4x the detection of 1 with the same answers on held-out talking videos "
        '(docs/performance.md, "Fewer detections"); 1 detects every frame',
    )
    max_faces: int = Field(
        8,
        ge=1,
        description="Faces followed at once; of more in a frame the largest are (the result's "
        "`faces.dropped` says how many were left out); 1: only the largest",
    )
    min_face_px: float = Field(
        24.0,
        ge=1,
        description="Faces smaller than this (the detector's box side, in frame pixels) are not followed: "
        "half the network's 48 px input",
    )
    track_gap_s: float = Field(
        1.0,
        gt=0,
        description="A person unseen for longer than this many seconds is gone; if they come back they are "
        "a new person (no re-identification)",
    )
    display_size: int = Field(128, description="Side, in pixels, of the face crops attention maps are drawn on")

    # The answer and the timeline from evidence over time, not from scattered single clips: chosen on talking
    # videos of London people the held-out evaluation does not use (docs/real-faces.md, "The answer from
    # evidence over time")
    vote_smooth_clips: int = Field(
        1,
        ge=0,
        json_schema_extra={"section": "The answer from evidence over time"},
        description="Each clip's probabilities are averaged with its neighbours' within ±N clips before it is "
        "labelled (0: every clip as it is). 0 with `RAMFER_VOTE_MIN_CLIPS=1` is the paper's plain vote of every clip "
        "(what `training cv` reports); chosen on held-out real faces (docs/real-faces.md)",
    )
    vote_min_clips: int = Field(
        5,
        ge=1,
        description="8-class models: an expression outvotes neutral clips only where it holds this many consecutive "
        "clips (1: any expressive clip does); the timeline has no run shorter than this",
    )
    neutral_bias: float | None = Field(
        None,
        ge=0,
        description="8-class models: neutral's probability is weighed by exp(N) against the expressions' before each "
        "clip is labelled: a prior for neutral, which real video shows more often than some training data did "
        "(0: the network's own). Unset: the checkpoint's own choice (its config.json's decision; 2.5 for "
        "checkpoints that record none). Each result's `decision` says what was used",
    )
    flip_average: bool = Field(
        False,
        description="Average each clip's probabilities with its mirror image's (twice the model's work; "
        "docs/real-faces.md measures it)",
    )

    # Access and backpressure (docs/security.md)
    api_keys: list[str] = Field(
        default_factory=list,
        json_schema_extra={"section": "Access and backpressure"},
        description='A JSON list, e.g. `["k1","k2"]`; when set, every route but `/`, `/healthz` and `/readyz` needs '
        "`Authorization: Bearer <key>` (docs/security.md)",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="A JSON list of the origins allowed to call the API from a browser, e.g. "
        '`["https://app.example"]`; empty: CORS off',
    )
    max_queued_jobs: int = Field(
        100,
        description="Beyond this many queued jobs, `POST /predict` answers 429 with `Retry-After` ...",
    )
    queue_full_retry_after_s: int = Field(10, description="... of this many seconds")
    rate_limit_per_minute: int = Field(
        0,
        description="Uploads per client (its API key, else its IP address) per minute; 0: no limit",
    )

    # Live sessions (WS /live, service/live.py): a camera's frames analysed as they come, by live workers
    # (`python -m service live-worker`, service/live_worker.py), through Redis
    live_max_sessions: int = Field(
        8,
        ge=0,
        json_schema_extra={"section": "Live sessions"},
        description="Live sessions at once in the whole service; one more is refused (close code 4429)",
    )
    live_sessions_per_worker: int = Field(
        2,
        ge=1,
        description="Live sessions one live worker serves at once (its frames, detector and model share one "
        "core's time)",
    )
    live_buffer_frames: int = Field(
        4,
        ge=1,
        description="Frames of a session waiting for its worker; when more arrive the oldest are dropped "
        "(at 15 fps, 4 frames: at most ~0.27 s behind the camera), and the client is told how many",
    )
    live_max_frame_kb: float = Field(
        512.0, gt=0, description="A frame (JPEG) larger than this many KiB closes the session (4413)"
    )
    live_idle_timeout_s: float = Field(
        10.0,
        gt=0,
        description="A session whose client sends nothing for this many seconds is closed (4408); also "
        "the time for the first message",
    )
    live_send_timeout_s: float = Field(
        10.0,
        gt=0,
        description="A client that does not take a message within this many seconds (it stopped "
        "reading) is closed (4408)",
    )
    live_start_timeout_s: float = Field(
        10.0,
        gt=0,
        description="Seconds a new session waits for a live worker with room before it is refused (4503)",
    )
    live_worker_grace_s: float = Field(
        5.0,
        gt=0,
        description="A live worker silent this many seconds is taken for dead: its sessions are told and closed (4503)",
    )
    live_decide_every_clips: int = Field(
        4,
        ge=1,
        description="The decided expression (the service's decision rule over `RAMFER_LIVE_WINDOW_S`) is "
        "sent every this many clips",
    )
    live_window_s: float = Field(
        4.0,
        gt=0,
        description="The decided expression reads the clips of the last this many seconds",
    )

    # serve's own processes
    workers: int = Field(
        1,
        json_schema_extra={"section": "What `serve` starts"},
        description="Worker processes `serve` starts when it runs Redis itself (`--workers` overrides it)",
    )
    live_workers: int = Field(
        1,
        description="Live worker processes `serve` starts when it runs Redis itself (0: no Live view)",
    )
    serve_pid: int | None = Field(
        None,
        description="Set by `serve` for the workers it starts, not by hand: a worker stops when that process is "
        "gone, however it went (service/lifetime.py)",
    )

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


# docs/configuration.md's table, made from the fields above
MARKERS = ("<!-- settings:start -->", "<!-- settings:end -->")


def shown_default(field: FieldInfo) -> str:
    """A field's default as the table shows it: `unset`, `true`, `[]`, `ramfer`, `3`."""
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    if "shown_default" in extra:
        return str(extra["shown_default"])
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float):
        return f"`{value:g}`"
    if isinstance(value, list):
        return f"`{json.dumps(value)}`"
    return f"`{value}`"


def markdown_reference() -> str:
    """The settings' reference: a table per section, a row per field (name, default, description), between MARKERS."""
    lines = [
        MARKERS[0],
        "<!-- made by `python -m service settings --write docs/configuration.md` from "
        "service/settings.py: edit the descriptions there -->",
    ]
    for name, field in Settings.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if "section" in extra:
            lines += ["", f"### {extra['section']}", "", "| Variable | Default | What it does |", "|---|---|---|"]
        variable = f"`{env_name(name)}`" + (f" (or `{ACCEPTED_ALIASES[name]}`)" if name in ACCEPTED_ALIASES else "")
        description = re.sub(r"\s+", " ", field.description or "").strip().replace("|", "\\|")
        lines.append(
            f"| {variable} | {shown_default(field)} | {description}{'' if description.endswith('.') else '.'} |"
        )
    return "\n".join(lines + ["", MARKERS[1]])


def with_reference(text: str) -> str:
    """`text` (docs/configuration.md) with the block between MARKERS replaced by markdown_reference()."""
    start, end = text.find(MARKERS[0]), text.find(MARKERS[1])
    if start < 0 or end < start:
        raise ValueError(f"the file has no {MARKERS[0]} ... {MARKERS[1]} block")
    return text[:start] + markdown_reference() + text[end + len(MARKERS[1]) :]


def settings_in_effect(settings: Settings) -> list[tuple[str, str]]:
    """Each setting's variable and its value as these settings have it (secrets as ********)."""
    rows = []
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if value is None:
            shown = "(unset)"
        elif isinstance(value, bool):
            shown = str(value).lower()
        elif isinstance(value, list):
            shown = json.dumps(value)
        else:
            shown = str(value)  # a SecretStr shows as **********
        rows.append((env_name(name), shown))
    return rows
