"""A real S3-API server on loopback for the tests (moto's standalone server), and its client env.

Object storage is reached through s3fs with the endpoint and credentials in the
environment (``AWS_ENDPOINT_URL`` …), exactly as a user points emofuse at MinIO or
another S3-API service; subprocesses (dask workers, the CLI) inherit them.
"""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Iterator


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def s3_env(endpoint: str) -> dict[str, str]:
    """The variables that point s3fs/boto at ``endpoint`` (any key works against moto)."""
    return {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "emofuse-test", "AWS_SECRET_ACCESS_KEY": "emofuse-test",
            "AWS_DEFAULT_REGION": "us-east-1"}


@contextlib.contextmanager
def s3_server(port: int | None = None, wait_s: float = 30.0) -> Iterator[tuple[str, subprocess.Popen]]:
    """Start ``moto_server`` on 127.0.0.1 and yield (endpoint URL, process); stop it afterwards."""
    port = port or free_port()
    exe = os.path.join(os.path.dirname(sys.executable), "moto_server")
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + wait_s
    while True:
        try:
            urllib.request.urlopen(endpoint, timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"moto_server did not answer on {endpoint}") from None
            time.sleep(0.2)
    try:
        yield endpoint, proc
    finally:
        proc.kill()
        proc.wait()


def create_bucket(endpoint: str, bucket: str) -> None:
    import boto3

    env = s3_env(endpoint)
    boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                 aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                 region_name=env["AWS_DEFAULT_REGION"]).create_bucket(Bucket=bucket)
