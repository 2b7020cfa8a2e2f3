"""Where uploads and result images live: a local directory, or an S3-compatible bucket.

The API, the workers and the cleanup see one small interface (keys are '/'-separated paths such as
"uploads/<job>.video" and "results/<job>/peak.png"):

    put_file(key, path)  get(key) -> bytes  stream(key[, start, end]) -> chunks  size(key)  local_copy(key) -> a file to decode
    delete(key)  delete_prefix(prefix)  exists(key)  url(key) -> presigned URL or None  list(prefix)  ping()

The local directory (the default, and what the one-command `serve` uses) needs every process to
share it (one machine, or a volume). S3 needs nothing shared but the bucket: the API puts each
upload there, a worker on any machine downloads it to a temporary file, decodes it, puts the
attention PNGs back, and the temporary file is removed.

Every failure to reach the storage is raised as StorageUnavailable (the API answers 503, a job
fails with "storage_unavailable"); a missing key is FileNotFoundError.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from service.settings import Settings

log = logging.getLogger(__name__)
CHUNK = 256 * 1024


class StorageUnavailable(Exception):
    """The storage cannot be reached (or refused us); the message is for the operator's log."""


def missing(key: str) -> FileNotFoundError:
    """A key not in the storage; `storage_key` tells it from any other missing file."""
    e = FileNotFoundError(f"not in the storage: {key}")
    e.storage_key = key
    return e


@dataclass
class Entry:
    key: str
    modified: float  # unix time


class LocalStorage:
    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):  # keys are built by us; this is a second lock
            raise ValueError(f"key outside the storage: {key!r}")
        return path

    def staging_path(self, key: str) -> Path:
        """Where an upload is written while it streams in: its final place (no copy afterwards)."""
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def put_staged(self, key: str, staged: Path) -> None:
        pass  # already where it belongs

    def put_file(self, key: str, source: Path) -> None:
        dest = self.path(key)
        if Path(source).resolve() == dest:
            return
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        shutil.copyfile(source, tmp)
        tmp.replace(dest)  # readers never see half a file

    def get(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            raise missing(key) from None

    def stream(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The file's bytes from `start` to `end` (inclusive; None: to its end), in chunks."""
        try:
            f = open(self.path(key), "rb")  # noqa: SIM115  opened now: a missing file raises here, not mid-answer
        except FileNotFoundError:
            raise missing(key) from None

        def chunks():
            with f:
                f.seek(start)
                left = None if end is None else end + 1 - start
                while (left is None or left > 0) and (chunk := f.read(CHUNK if left is None else min(CHUNK, left))):
                    if left is not None:
                        left -= len(chunk)
                    yield chunk

        return chunks()

    def size(self, key: str) -> int:
        try:
            return self.path(key).stat().st_size
        except FileNotFoundError:
            raise missing(key) from None

    @contextlib.contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        path = self.path(key)
        if not path.is_file():
            raise missing(key)
        yield path  # already a file here: nothing to download

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> None:
        path = self.path(prefix)
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)

    def url(self, key: str) -> str | None:
        return None  # served by the API

    def list(self, prefix: str) -> Iterator[Entry]:
        top = self.path(prefix)
        if not top.is_dir():
            return
        for dirpath, _, files in os.walk(top):
            for name in files:
                path = Path(dirpath) / name
                with contextlib.suppress(FileNotFoundError):  # removed meanwhile
                    yield Entry(path.relative_to(self.root).as_posix(), path.stat().st_mtime)

    def ping(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)


class S3Storage:
    """Any S3-compatible service (AWS S3, SeaweedFS, MinIO, Ceph, ...) through boto3.

    Credentials: RAMFER_S3_ACCESS_KEY_ID / RAMFER_S3_SECRET_ACCESS_KEY (environment or files in the secrets
    folder, see Settings), else boto3's own chain (AWS_* variables, ~/.aws, an instance role).
    They are never logged: Settings holds them as SecretStr and boto3 does not log them."""

    def __init__(self, settings: Settings):
        import boto3
        from botocore.config import Config

        self.bucket = settings.s3_bucket
        self.presign = settings.s3_presigned_urls
        self.url_ttl_s = settings.s3_url_ttl_s
        # Short timeouts and few retries: when the storage is down the API must answer 503 quickly.
        config = Config(
            connect_timeout=settings.s3_timeout_s,
            read_timeout=max(settings.s3_timeout_s, 10),
            retries={"max_attempts": 3, "mode": "standard"},
            s3={"addressing_style": settings.s3_addressing_style},
            signature_version="s3v4",
        )
        keys = {}
        if settings.s3_access_key_id and settings.s3_secret_access_key:
            keys = {
                "aws_access_key_id": settings.s3_access_key_id.get_secret_value(),
                "aws_secret_access_key": settings.s3_secret_access_key.get_secret_value(),
            }
        session = boto3.session.Session(region_name=settings.s3_region, **keys)
        self.client = session.client("s3", endpoint_url=settings.s3_endpoint_url, config=config)
        # Presigned URLs are for the caller: signed for the address the caller reaches the storage at.
        public = settings.s3_public_endpoint_url or settings.s3_endpoint_url
        self.public_client = (
            self.client
            if public == settings.s3_endpoint_url
            else session.client("s3", endpoint_url=public, config=config)
        )
        self.staging = Path(tempfile.gettempdir()) / "ramfer-staging"

    @contextlib.contextmanager
    def _errors(self, key: str = ""):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NotFound"):
                raise missing(key) from e
            raise StorageUnavailable(f"S3 bucket {self.bucket!r} refused {key or 'the request'}: {code}") from e
        except BotoCoreError as e:  # connection refused, timeouts, DNS, no credentials
            raise StorageUnavailable(
                f"S3 storage at {self.client.meta.endpoint_url} cannot be reached: {type(e).__name__}"
            ) from e

    def staging_path(self, key: str) -> Path:
        """An upload streams into a local file first: it is probed (check_video) before it is put."""
        self.staging.mkdir(parents=True, exist_ok=True)
        return self.staging / f"{os.getpid()}-{key.replace('/', '_')}"

    def put_staged(self, key: str, staged: Path) -> None:
        try:
            self.put_file(key, staged)
        finally:
            staged.unlink(missing_ok=True)  # the API's disk keeps no copy

    def put_file(self, key: str, source: Path) -> None:
        with self._errors(key):
            self.client.upload_file(str(source), self.bucket, key)  # multipart for big files

    def get(self, key: str) -> bytes:
        with self._errors(key):
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def stream(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        ranged = {"Range": f"bytes={start}-{'' if end is None else end}"} if start or end is not None else {}
        with self._errors(key):
            body = self.client.get_object(Bucket=self.bucket, Key=key, **ranged)["Body"]

        def chunks():
            with self._errors(key), contextlib.closing(body):
                yield from body.iter_chunks(CHUNK)

        return chunks()

    @contextlib.contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        # A private folder, removed whatever happens: the video never outlives the job on a worker.
        with tempfile.TemporaryDirectory(prefix="ramfer-job-") as folder:
            path = Path(folder) / Path(key).name
            with self._errors(key):
                self.client.download_file(self.bucket, key, str(path))
            yield path

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
            return True
        except FileNotFoundError:
            return False

    def size(self, key: str) -> int:
        with self._errors(key):
            return int(self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"])

    def delete(self, key: str) -> None:
        with self._errors(key):
            self.client.delete_object(Bucket=self.bucket, Key=key)

    def delete_prefix(self, prefix: str) -> None:
        keys = [e.key for e in self.list(prefix)]
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
            with self._errors(prefix):
                self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in keys[start : start + 1000]], "Quiet": True},
                )

    def url(self, key: str) -> str | None:
        if not self.presign:
            return None
        with self._errors(key):
            return self.public_client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=self.url_ttl_s
            )

    def list(self, prefix: str) -> Iterator[Entry]:
        with self._errors(prefix):
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix.rstrip("/") + "/"
            ):
                for obj in page.get("Contents", []):
                    yield Entry(obj["Key"], obj["LastModified"].timestamp())

    def ping(self) -> None:
        with self._errors():
            self.client.head_bucket(Bucket=self.bucket)

    def create_bucket(self) -> None:
        """For a fresh dev or compose stack (RAMFER_S3_CREATE_BUCKET=true): the bucket made if missing."""
        with self._errors():
            try:
                self.client.head_bucket(Bucket=self.bucket)
                return
            except Exception as e:
                if "404" not in str(e) and "NoSuchBucket" not in str(e) and "Not Found" not in str(e):
                    raise
            self.client.create_bucket(Bucket=self.bucket)
            log.info("created S3 bucket %r", self.bucket)


Storage = LocalStorage | S3Storage


def make_storage(settings: Settings) -> Storage:
    return S3Storage(settings) if settings.storage_backend == "s3" else LocalStorage(settings.storage_dir)


def ensure_bucket(storage: Storage, settings: Settings, attempts: int = 10) -> None:
    """RAMFER_S3_CREATE_BUCKET=true: the API makes the bucket if it is missing (a fresh compose stack,
    whose S3 service may still be starting: tried `attempts` times, a second apart)."""
    if not (isinstance(storage, S3Storage) and settings.s3_create_bucket):
        return
    for attempt in range(attempts):
        try:
            storage.create_bucket()
            return
        except StorageUnavailable as e:
            if attempt == attempts - 1:
                log.warning("could not create the S3 bucket: %s", e)
            else:
                time.sleep(1)


def upload_key(job_id: str) -> str:
    return f"uploads/{job_id}.video"


def results_prefix(job_id: str) -> str:
    return f"results/{job_id}"


def image_key(job_id: str, name: str) -> str:
    return f"{results_prefix(job_id)}/{name}.png"
