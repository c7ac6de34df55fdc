"""Fixtures: a real moto S3 server on 127.0.0.1 (one per test session) with IAM authentication on,
so bad credentials are rejected as AWS would, and a unique bucket per test."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import boto3
import pytest

import zc_events
import zc_events_aws

REGION = "us-east-1"
# moto authenticates every request after this many: exactly the three IAM calls below.
_SETUP_CALLS = 3


@dataclass(frozen=True)
class MotoServer:
    endpoint_url: str
    access_key_id: str
    secret_access_key: str
    pid: int

    def env(self) -> dict[str, str]:
        """The settings that point zc_events_aws at this server."""
        return {
            "AWS_S3_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_REGION": REGION,
        }

    def client(self) -> object:
        return boto3.session.Session(
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=REGION,
        ).client("s3", endpoint_url=self.endpoint_url)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """moto in server mode, spoken to over HTTP; stopped by PID at the end of the session."""
    port = _free_port()
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(_SETUP_CALLS)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"moto_server exited: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not start within 30 s") from None
                time.sleep(0.1)
        endpoint = f"http://127.0.0.1:{port}"
        iam = boto3.session.Session(
            aws_access_key_id="setup", aws_secret_access_key="setup", region_name=REGION
        ).client("iam", endpoint_url=endpoint)
        iam.create_user(UserName="zc-events-test")
        iam.put_user_policy(
            UserName="zc-events-test",
            PolicyName="all",
            PolicyDocument='{"Version": "2012-10-17", "Statement": '
            '[{"Effect": "Allow", "Action": "*", "Resource": "*"}]}',
        )
        key = iam.create_access_key(UserName="zc-events-test")["AccessKey"]
        yield MotoServer(endpoint, key["AccessKeyId"], key["SecretAccessKey"], proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


@pytest.fixture
def aws(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoServer]:
    """The moto server's endpoint and credentials in the environment (the settings' last source)."""
    for name, value in moto_server.env().items():
        monkeypatch.setenv(name, value)
    zc_events.reset()
    zc_events_aws.reset_clients()
    yield moto_server
    zc_events.reset()
    zc_events_aws.reset_clients()


@pytest.fixture
def bucket(aws: MotoServer) -> Iterator[str]:
    """A fresh bucket; emptied and deleted after the test."""
    name = f"zc-events-test-{uuid.uuid4().hex[:12]}"
    s3 = aws.client()
    s3.create_bucket(Bucket=name)  # type: ignore[attr-defined]
    yield name
    for obj in s3.list_objects_v2(Bucket=name).get("Contents", []):  # type: ignore[attr-defined]
        s3.delete_object(Bucket=name, Key=obj["Key"])  # type: ignore[attr-defined]
    s3.delete_bucket(Bucket=name)  # type: ignore[attr-defined]


def list_keys(server: MotoServer, bucket: str) -> list[str]:
    """Every key in ``bucket``."""
    contents = server.client().list_objects_v2(Bucket=bucket).get("Contents", [])  # type: ignore[attr-defined]
    return sorted(obj["Key"] for obj in contents)


@pytest.fixture
def keys_in(aws: MotoServer) -> Callable[[str], list[str]]:
    """``keys_in(bucket)``: the keys in a bucket, sorted."""
    return lambda bucket: list_keys(aws, bucket)
