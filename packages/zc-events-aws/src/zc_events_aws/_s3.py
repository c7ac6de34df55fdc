"""S3 access: one shared client per configuration, the legacy helpers, and clear errors."""

from __future__ import annotations

import os
import threading
import uuid
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

import zc_events
from zc_events import Settings, ZcEventsError

__all__ = [
    "S3IOException",
    "S3Settings",
    "read_s3_file_as_string",
    "reset_clients",
    "s3_client",
    "save_file_contents_to_s3",
    "save_string_contents_to_s3",
]

#: Connect fast, retry a little: a dead endpoint fails in seconds, not minutes.
_BOTO_CONFIG = Config(
    connect_timeout=5,
    read_timeout=60,
    retries={"max_attempts": 3, "mode": "standard"},
)

_clients: dict[tuple[Any, ...], Any] = {}
_clients_lock = threading.Lock()

_HINTS = {
    "NoSuchBucket": "the bucket does not exist",
    "NoSuchKey": "the object does not exist",
    "404": "the object does not exist",
    "NotFound": "the object does not exist",
    "InvalidAccessKeyId": "the access key is not valid: check AWS_ACCESS_KEY_ID",
    "SignatureDoesNotMatch": "the secret key does not match: check AWS_SECRET_ACCESS_KEY",
    "AccessDenied": "access denied: check the credentials and the bucket policy",
    "403": "access denied: check the credentials and the bucket policy",
}


class S3IOException(ZcEventsError):
    """Reading or writing S3 failed. The message names the bucket, the key and the cause.

    ``bucket``, ``key`` and ``code`` (the S3 error code, e.g. ``NoSuchBucket``, or None) are
    attributes too.
    """

    def __init__(
        self,
        message: str,
        bucket: str | None = None,
        key: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.bucket = bucket
        self.key = key
        self.code = code


class S3Settings:
    """Where S3 is and how to sign in, resolved from arguments, then settings, then boto3.

    Settings: ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``,
    ``AWS_REGION``, ``AWS_S3_ENDPOINT_URL`` (for MinIO, moto or LocalStack). What is unset is left
    to boto3's default chain (environment, shared config, instance role).
    """

    __slots__ = ("access_key_id", "endpoint_url", "region", "secret_access_key", "session_token")

    def __init__(
        self,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        aws_session_token: str | None = None,
        settings: Settings | None = None,
    ) -> None:
        s = settings if settings is not None else zc_events.get_settings()

        def pick(given: str | None, name: str) -> str | None:
            value = given if given else s.get(name, None)
            return str(value) if value else None

        self.endpoint_url = pick(endpoint_url, "AWS_S3_ENDPOINT_URL")
        self.region = pick(region, "AWS_REGION") or pick(None, "AWS_DEFAULT_REGION")
        self.access_key_id = pick(aws_access_key_id, "AWS_ACCESS_KEY_ID")
        self.secret_access_key = pick(aws_secret_access_key, "AWS_SECRET_ACCESS_KEY")
        self.session_token = pick(aws_session_token, "AWS_SESSION_TOKEN")

    def key(self) -> tuple[Any, ...]:
        return (
            self.endpoint_url,
            self.region,
            self.access_key_id,
            self.secret_access_key,
            self.session_token,
            os.getpid(),  # clients must not cross a fork
        )

    def describe(self) -> str:
        """Where requests go, for error messages."""
        return self.endpoint_url or f"AWS S3 ({self.region or 'default region'})"


def s3_client(s3: S3Settings | None = None, **kwargs: Any) -> Any:
    """A boto3 S3 client for these settings, created once and shared (clients are thread-safe).

    ``kwargs`` are those of :class:`S3Settings` when ``s3`` is not given.
    """
    s3 = s3 if s3 is not None else S3Settings(**kwargs)
    cache_key = s3.key()
    client = _clients.get(cache_key)
    if client is not None:
        return client
    with _clients_lock:
        client = _clients.get(cache_key)
        if client is None:
            # A session per configuration: boto3's default session is not thread-safe.
            session = boto3.session.Session(
                aws_access_key_id=s3.access_key_id,
                aws_secret_access_key=s3.secret_access_key,
                aws_session_token=s3.session_token,
                region_name=s3.region,
            )
            client = session.client("s3", endpoint_url=s3.endpoint_url, config=_BOTO_CONFIG)
            _clients[cache_key] = client
    return client


def reset_clients() -> None:
    """Forget the shared clients (after changing credentials at run time, or in tests)."""
    with _clients_lock:
        _clients.clear()


def s3_error(
    action: str, exc: BaseException, bucket: str, key: str | None, where: str
) -> S3IOException:
    """An S3IOException for a failed S3 call, naming the bucket, key, cause and endpoint."""
    code: str | None = None
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", "")) or None
        cause = _HINTS.get(code or "", "")
        detail = f"{cause} ({exc})" if cause else str(exc)
    elif isinstance(exc, EndpointConnectionError):
        detail = f"cannot reach the S3 endpoint: {exc} (check AWS_S3_ENDPOINT_URL)"
    elif isinstance(exc, BotoCoreError):
        detail = f"{type(exc).__name__}: {exc}"
    else:
        detail = f"{type(exc).__name__}: {exc}"
    target = f"s3://{bucket}/{key}" if key else f"s3://{bucket}"
    return S3IOException(
        f"failed to {action} {target} (aws_bucket_name: {bucket}, content_key: {key}) "
        f"on {where}: {detail}",
        bucket,
        key,
        code,
    )


def _settings_for(aws_access_key_id: str | None, aws_secret_access_key: str | None) -> S3Settings:
    return S3Settings(
        aws_access_key_id=aws_access_key_id, aws_secret_access_key=aws_secret_access_key
    )


def save_string_contents_to_s3(
    stringified_data: str | bytes,
    aws_bucket_name: str,
    content_key: str | None = None,
    aws_access_key_id: str | None = None,
    aws_secret_access_key: str | None = None,
    *,
    content_type: str | None = None,
) -> str:
    """Store a string (UTF-8) or bytes at ``content_key`` (default: a new uuid4) and return the key.

    Raises S3IOException naming the bucket and key.
    """
    key = content_key or str(uuid.uuid4())
    s3 = _settings_for(aws_access_key_id, aws_secret_access_key)
    body = (
        stringified_data.encode("utf-8") if isinstance(stringified_data, str) else stringified_data
    )
    extra: dict[str, Any] = {"ContentType": content_type} if content_type else {}
    try:
        s3_client(s3).put_object(Bucket=aws_bucket_name, Key=key, Body=body, **extra)
    except (ClientError, BotoCoreError) as exc:
        raise s3_error("save contents to", exc, aws_bucket_name, key, s3.describe()) from exc
    return key


def save_file_contents_to_s3(
    filepath: str | os.PathLike[str],
    aws_bucket_name: str,
    content_key: str | None = None,
    aws_access_key_id: str | None = None,
    aws_secret_access_key: str | None = None,
) -> str:
    """Upload a local file (multipart when large) and return its key (default: a new uuid4).

    Raises S3IOException naming the bucket and key, FileNotFoundError for a missing file.
    """
    path = os.fspath(filepath)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"cannot upload {path!r} to s3://{aws_bucket_name}: no such file")
    key = content_key or str(uuid.uuid4())
    s3 = _settings_for(aws_access_key_id, aws_secret_access_key)
    try:
        s3_client(s3).upload_file(path, aws_bucket_name, key)
    except (ClientError, BotoCoreError) as exc:
        raise s3_error(f"upload {path!r} to", exc, aws_bucket_name, key, s3.describe()) from exc
    except boto3.exceptions.S3UploadFailedError as exc:
        # boto3 wraps the ClientError (as the cause or the context, depending on the version).
        inner = exc.__cause__ or exc.__context__
        cause = inner if isinstance(inner, ClientError) else exc
        raise s3_error(f"upload {path!r} to", cause, aws_bucket_name, key, s3.describe()) from exc
    return key


def read_s3_file_as_string(
    aws_bucket_name: str,
    content_key: str,
    delete: bool = False,
    aws_access_key_id: str | None = None,
    aws_secret_access_key: str | None = None,
    *,
    encoding: str | None = None,
) -> Any:
    """Return the contents of an object, as bytes (as the old helper did) or decoded with
    ``encoding``; with ``delete=True`` delete the object once read.

    Raises S3IOException naming the bucket and key (``code`` ``NoSuchKey`` when it is missing).
    """
    s3 = _settings_for(aws_access_key_id, aws_secret_access_key)
    client = s3_client(s3)
    try:
        body: bytes = client.get_object(Bucket=aws_bucket_name, Key=content_key)["Body"].read()
    except (ClientError, BotoCoreError) as exc:
        raise s3_error("read", exc, aws_bucket_name, content_key, s3.describe()) from exc
    if delete:
        try:
            client.delete_object(Bucket=aws_bucket_name, Key=content_key)
        except (ClientError, BotoCoreError) as exc:
            raise s3_error("delete", exc, aws_bucket_name, content_key, s3.describe()) from exc
    return body.decode(encoding) if encoding else body
