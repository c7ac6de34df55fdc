"""The S3 helpers against a real S3 API (moto server over HTTP)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

import zc_events
from zc_events_aws import (
    S3IOException,
    read_s3_file_as_string,
    reset_clients,
    s3_client,
    save_file_contents_to_s3,
    save_string_contents_to_s3,
)

KeysIn = Callable[[str], list[str]]

pytestmark = pytest.mark.s3


def test_string_round_trip(bucket: str) -> None:
    key = save_string_contents_to_s3("zażółć 🚀", bucket, "greeting")
    assert key == "greeting"
    assert read_s3_file_as_string(bucket, key) == "zażółć 🚀".encode()
    assert read_s3_file_as_string(bucket, key, encoding="utf-8") == "zażółć 🚀"


def test_default_key_is_a_uuid(bucket: str) -> None:
    key = save_string_contents_to_s3(b"\x00\x01", bucket)
    assert str(uuid.UUID(key)) == key
    assert read_s3_file_as_string(bucket, key) == b"\x00\x01"


def test_read_and_delete(bucket: str, keys_in: KeysIn) -> None:
    key = save_string_contents_to_s3("once", bucket)
    assert read_s3_file_as_string(bucket, key, delete=True) == b"once"
    assert keys_in(bucket) == []
    with pytest.raises(S3IOException) as info:
        read_s3_file_as_string(bucket, key)
    assert info.value.code == "NoSuchKey"
    assert f"s3://{bucket}/{key}" in str(info.value)
    assert "does not exist" in str(info.value)


def test_file_upload(bucket: str, tmp_path: Path) -> None:
    path = tmp_path / "report.csv"
    path.write_bytes(b"a,b\n1,2\n")
    key = save_file_contents_to_s3(path, bucket, "reports/report.csv")
    assert key == "reports/report.csv"
    assert read_s3_file_as_string(bucket, key) == b"a,b\n1,2\n"


def test_missing_file(bucket: str, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        save_file_contents_to_s3(tmp_path / "nope.txt", bucket)


@pytest.mark.parametrize("action", ["save", "upload", "read"])
def test_missing_bucket(aws: object, action: str, tmp_path: Path) -> None:
    missing = f"zc-events-missing-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "f.txt"
    path.write_text("x")
    with pytest.raises(S3IOException) as info:
        if action == "save":
            save_string_contents_to_s3("x", missing, "k")
        elif action == "upload":
            save_file_contents_to_s3(path, missing, "k")
        else:
            read_s3_file_as_string(missing, "k")
    assert info.value.bucket == missing
    assert info.value.key == "k"
    assert info.value.code == "NoSuchBucket"
    assert f"aws_bucket_name: {missing}, content_key: k" in str(info.value)
    assert "the bucket does not exist" in str(info.value)


def test_bad_access_key(bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIANOTAREALKEY00000")
    with pytest.raises(S3IOException, match="AWS_ACCESS_KEY_ID") as info:
        save_string_contents_to_s3("x", bucket, "k")
    assert info.value.code == "InvalidAccessKeyId"
    assert f"s3://{bucket}/k" in str(info.value)


def test_bad_secret_passed_as_argument(bucket: str) -> None:
    key = save_string_contents_to_s3("x", bucket)
    with pytest.raises(S3IOException, match="AWS_SECRET_ACCESS_KEY") as info:
        read_s3_file_as_string(bucket, key, aws_secret_access_key="wrong")
    assert info.value.code == "SignatureDoesNotMatch"


def test_settings_from_configure(bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = zc_events.get_settings().get("AWS_S3_ENDPOINT_URL")
    monkeypatch.delenv("AWS_S3_ENDPOINT_URL")
    zc_events.configure(AWS_S3_ENDPOINT_URL=endpoint)
    assert read_s3_file_as_string(bucket, save_string_contents_to_s3("x", bucket)) == b"x"


def test_one_client_is_reused(aws: object) -> None:
    assert s3_client() is s3_client()
    assert s3_client() is not s3_client(aws_secret_access_key="other")
    first = s3_client()
    reset_clients()
    assert s3_client() is not first


def test_unreachable_endpoint_fails_fast(monkeypatch: pytest.MonkeyPatch, aws: object) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("AWS_S3_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    started = time.monotonic()
    with pytest.raises(S3IOException, match="AWS_S3_ENDPOINT_URL"):
        save_string_contents_to_s3("x", "some-bucket", "k")
    assert time.monotonic() - started < 10
