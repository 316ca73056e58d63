"""A real S3-protocol server for the tests: moto's standalone server, in its own process on 127.0.0.1.

No registry this machine can use offers MinIO, so the object-store tests talk to `moto_server` (from
`moto[server]`, in the `test` extra) over HTTP with boto3, exactly as a worker talks to S3: signed
requests, multipart uploads, ranged GETs, presigned URLs. It runs as a subprocess (not moto's
in-process mock), so nothing in the client is patched.

Use the `moto_s3` fixture (one server per test session) and `s3_bucket` (a bucket of the test's own,
dropped after it), so tests never see each other's objects and the server's memory stays small.
Import both into the conftest that needs them.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

ACCESS_KEY_ID = "testing-key"
SECRET_ACCESS_KEY = "testing-secret"  # moto accepts any credentials; these only have to be consistent
REGION = "us-east-1"
START_TIMEOUT_SECONDS = 30.0


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _moto_server_command() -> list[str]:
    script = Path(sys.executable).with_name("moto_server")
    if script.exists():
        return [str(script)]
    found = shutil.which("moto_server")
    if found is None:
        raise RuntimeError("moto_server is not installed: pip install -e '.[test]' (moto[server])")
    return [found]


@dataclass
class MotoS3:
    """A running moto server and how to reach it."""

    process: subprocess.Popen[bytes]
    port: int

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(cls) -> MotoS3:
        """Start the server on a free port and wait until it answers."""
        port = free_port()
        process = subprocess.Popen(
            [*_moto_server_command(), "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        server = cls(process, port)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"moto_server exited with {process.returncode} before answering")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{server.endpoint_url}/moto-api/data.json", timeout=1.0).status_code == 200:
                    return server
            time.sleep(0.1)
        server.stop()
        raise RuntimeError(f"moto_server did not answer on port {port} within {START_TIMEOUT_SECONDS} s")

    def stop(self) -> None:
        """Stop the server (it holds everything in memory, so nothing is left behind)."""
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def client(self) -> Any:
        """A boto3 S3 client on this server."""
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )

    def new_bucket(self) -> str:
        """A fresh, empty bucket's name (created)."""
        name = f"test-{secrets.token_hex(6)}"
        self.client().create_bucket(Bucket=name)
        return name

    def drop_bucket(self, name: str) -> None:
        """Delete a bucket with everything in it (moto keeps objects in memory: tests give it back)."""
        client = self.client()
        for upload in client.list_multipart_uploads(Bucket=name).get("Uploads", []):
            client.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
            objects = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if objects:
                client.delete_objects(Bucket=name, Delete={"Objects": objects, "Quiet": True})
        client.delete_bucket(Bucket=name)


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    """One moto S3 server for the whole test session, stopped at its end."""
    server = MotoS3.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(moto_s3: MotoS3) -> Iterator[str]:
    """A fresh bucket on the session's server for one test, dropped (with its objects) after it."""
    name = moto_s3.new_bucket()
    yield name
    moto_s3.drop_bucket(name)
