"""The ``s3_claim_check`` middleware: large bodies go through S3, the broker carries a reference.

Client, before publishing: a request whose encoded envelope is larger than ``threshold_bytes`` is
stored whole at ``<prefix><message id>.request.json`` and its ``data`` replaced by a reference.
Server, before the handler: the reference is resolved. Server, after the handler: a large response
(to a waiting call) is stored at ``<prefix><message id>.response.json``; the client reads and
deletes it before the caller sees it.

The request object outlives the handler, so that a message redelivered because its worker died
before acknowledging it still has its body: the client deletes it once the reply arrived (the
worker replies, then acknowledges); a fire-and-forget request is deleted by the worker once its
handler succeeded (a failed one is kept, so the dead-lettered message can be replayed). Objects
whose reader never came (the caller timed out, nobody handled the key, a failed no-wait, a crash)
are left to the bucket lifecycle rule of :func:`put_claim_check_lifecycle`. Downloads larger than
``ZC_EVENTS_MAX_MESSAGE_BYTES`` are refused.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from zc_events import (
    ConfigurationError,
    Envelope,
    EnvelopeError,
    Middleware,
    Response,
    Settings,
    get_settings,
)

from ._s3 import S3IOException, S3Settings, s3_client, s3_error

__all__ = [
    "DEFAULT_PREFIX",
    "DEFAULT_THRESHOLD",
    "MARKER",
    "ClaimCheckError",
    "S3ClaimCheck",
    "put_claim_check_lifecycle",
]

log = logging.getLogger("zc_events.aws")

#: The key of the reference object that stands in for a body: ``{"$zc_claim_check": {...}}``.
MARKER = "$zc_claim_check"
DEFAULT_THRESHOLD = 128 * 1024
DEFAULT_PREFIX = "zc-events/claim-check/"
LIFECYCLE_RULE_ID = "zc-events-claim-check"


class ClaimCheckError(S3IOException):
    """A claim-check object could not be stored, read, or trusted.

    Raised by the calling verb when the upload fails (nothing was published). When the receiving
    side cannot restore a body, the handler is not called and the caller gets an error response of
    type ``ClaimCheckError`` instead.
    """


def _reference(data: Any) -> dict[str, Any] | None:
    if isinstance(data, dict) and len(data) == 1 and MARKER in data:
        ref = data[MARKER]
        if isinstance(ref, dict):
            return ref
    return None


class S3ClaimCheck(Middleware):
    """Move bodies larger than ``threshold_bytes`` through S3 (middleware name ``s3_claim_check``).

    Options (``ZC_EVENTS_MIDDLEWARE_OPTIONS['s3_claim_check']``), the same on every service:

    - ``bucket`` (required): the bucket every service reads and writes;
    - ``threshold_bytes`` (default 131072): envelopes and responses whose JSON is larger go to S3;
    - ``prefix`` (default ``zc-events/claim-check/``): where the objects live;
    - ``endpoint_url``, ``region``, ``aws_access_key_id``, ``aws_secret_access_key``: override the
      ``AWS_*`` settings (else boto3's default chain).

    Objects larger than ``ZC_EVENTS_MAX_MESSAGE_BYTES`` (16 MiB by default) are neither stored
    nor read.

    A receiver reads only ``<prefix><message id>.request.json`` / ``.response.json`` of its own
    bucket, whatever the reference says, so a message cannot make it read or delete other objects.
    """

    def __init__(
        self,
        bucket: str | None = None,
        threshold_bytes: int = DEFAULT_THRESHOLD,
        prefix: str = DEFAULT_PREFIX,
        endpoint_url: str | None = None,
        region: str | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        settings: Settings | None = None,
    ) -> None:
        if not bucket or not isinstance(bucket, str):
            raise ConfigurationError(
                "s3_claim_check needs a 'bucket' option, e.g. "
                "ZC_EVENTS_MIDDLEWARE_OPTIONS={'s3_claim_check': {'bucket': 'my-bucket'}}"
            )
        if (
            isinstance(threshold_bytes, bool)
            or not isinstance(threshold_bytes, int)
            or (threshold_bytes < 1)
        ):
            raise ConfigurationError(
                "s3_claim_check option 'threshold_bytes' must be a positive int, "
                f"got {threshold_bytes!r}"
            )
        if not isinstance(prefix, str):
            raise ConfigurationError(
                f"s3_claim_check option 'prefix' must be a string, got {prefix!r}"
            )
        self.bucket = bucket
        self.threshold_bytes = threshold_bytes
        self.prefix = prefix
        self.s3 = S3Settings(
            endpoint_url=endpoint_url,
            region=region,
            aws_access_key_id=aws_access_key_id,
            aws_secret_access_key=aws_secret_access_key,
        )
        #: Largest object stored or read (``ZC_EVENTS_MAX_MESSAGE_BYTES``).
        self.max_bytes = (settings if settings is not None else get_settings()).max_message_bytes
        # Fire-and-forget request objects to delete once their handler succeeded, by message id.
        self._to_delete: dict[str, str] = {}
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        """The shared boto3 S3 client."""
        return s3_client(self.s3)

    def object_key(self, message_id: str, kind: str) -> str:
        """Where the body of ``kind`` (``request`` or ``response``) of a message is stored."""
        return f"{self.prefix}{message_id}.{kind}.json"

    # -- storage ------------------------------------------------------------------------------
    def _too_large(self, size: int, what: str) -> str:
        return (
            f"{what} is {size} bytes, over ZC_EVENTS_MAX_MESSAGE_BYTES ({self.max_bytes}), "
            "which also caps claim-check objects: raise it on every service"
        )

    def _put(self, key: str, body: bytes) -> dict[str, Any]:
        if len(body) > self.max_bytes:
            raise EnvelopeError(self._too_large(len(body), f"claim-check object {key}"), "data")
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType="application/json"
            )
        except (ClientError, BotoCoreError) as exc:
            error = s3_error("store claim-check object", exc, self.bucket, key, self.s3.describe())
            raise ClaimCheckError(str(error), self.bucket, key, error.code) from exc
        return {"bucket": self.bucket, "key": key, "size": len(body)}

    def _get(self, ref: dict[str, Any], key: str, what: str) -> bytes:
        if ref.get("key") != key or ref.get("bucket") != self.bucket:
            raise ClaimCheckError(
                f"{what} refers to claim-check object s3://{ref.get('bucket')}/{ref.get('key')}, "
                f"but this service reads s3://{self.bucket}/{key}: configure the same "
                "s3_claim_check 'bucket' and 'prefix' on every service",
                self.bucket,
                key,
            )
        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=key)
            size = obj.get("ContentLength")
            if isinstance(size, int) and size > self.max_bytes:
                obj["Body"].close()
                raise ClaimCheckError(
                    self._too_large(size, f"claim-check object s3://{self.bucket}/{key}"),
                    self.bucket,
                    key,
                )
            body: bytes = obj["Body"].read(self.max_bytes + 1)
            if len(body) > self.max_bytes:
                raise ClaimCheckError(
                    self._too_large(len(body), f"claim-check object s3://{self.bucket}/{key}"),
                    self.bucket,
                    key,
                )
        except (ClientError, BotoCoreError) as exc:
            error = s3_error("read claim-check object", exc, self.bucket, key, self.s3.describe())
            if error.code in ("NoSuchKey", "404"):
                message = (
                    f"the body of {what} was stored in S3 but claim-check object "
                    f"s3://{self.bucket}/{key} is missing: it was already read and deleted, or "
                    "removed by the bucket lifecycle rule"
                )
            else:
                message = f"cannot restore the body of {what}: {error}"
            raise ClaimCheckError(message, self.bucket, key, error.code) from exc
        return body

    def _delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError):
            # The body was delivered; the lifecycle rule removes what could not be deleted.
            log.warning(
                "could not delete claim-check object s3://%s/%s", self.bucket, key, exc_info=True
            )

    # -- client side --------------------------------------------------------------------------
    def outgoing_request(self, envelope: Envelope) -> Envelope:
        """Store a large request in S3 and send a reference instead (raises ClaimCheckError)."""
        if _reference(envelope.data) is not None:
            raise EnvelopeError(
                f"data for {envelope.key!r} looks like a claim-check reference ({MARKER!r}); "
                "such data cannot be sent",
                "data",
            )
        body = envelope.encode()
        if len(body) <= self.threshold_bytes:
            return envelope
        ref = self._put(self.object_key(envelope.id, "request"), body)
        envelope.data = {MARKER: ref}
        return envelope

    def incoming_response(self, envelope: Envelope, response: Response) -> Response:
        """Delete the request object (the worker has replied), restore a response the server
        stored in S3, then delete that object."""
        if _reference(envelope.data) is not None:
            self._delete(self.object_key(envelope.id, "request"))
        ref = _reference(response.data)
        if ref is None or response.has_errors:
            return response
        key = self.object_key(envelope.id, "response")
        what = f"the response to {envelope.method} {envelope.key!r} (id {envelope.id})"
        try:
            body = self._get(ref, key, what)
            restored = Response.decode(body)
        except (ClaimCheckError, EnvelopeError) as exc:
            return Response.error("ClaimCheckError", str(exc))
        self._delete(key)
        return restored

    # -- server side --------------------------------------------------------------------------
    def incoming_request(self, envelope: Envelope) -> Envelope:
        """Restore a request body stored in S3 (raises ClaimCheckError: an error response)."""
        ref = _reference(envelope.data)
        if ref is None:
            return envelope
        key = self.object_key(envelope.id, "request")
        what = f"request {envelope.method} {envelope.key!r} (id {envelope.id})"
        stored = Envelope.decode(self._get(ref, key, what))
        if stored.id != envelope.id:
            raise ClaimCheckError(
                f"claim-check object s3://{self.bucket}/{key} holds message {stored.id}, "
                f"not {envelope.id}",
                self.bucket,
                key,
            )
        envelope.data = stored.data
        if envelope.reply_to is None:
            with self._lock:
                self._to_delete[envelope.id] = key
        return envelope

    def outgoing_response(self, envelope: Envelope, response: Response) -> Response:
        """Store a large response in S3. A fire-and-forget request object is deleted here once
        its handler succeeded; a waiting call's is deleted by the client when the reply came."""
        with self._lock:
            done = self._to_delete.pop(envelope.id, None)
        if envelope.reply_to is None:  # fire-and-forget: nobody reads a response
            if done is not None and not response.has_errors:
                self._delete(done)
            return response
        try:
            body = response.encode()
        except TypeError:  # not JSON: the dispatcher turns it into an error response
            return response
        if len(body) <= self.threshold_bytes:
            return response
        ref = self._put(self.object_key(envelope.id, "response"), body)
        return Response({MARKER: ref}, False, [], response.status)

    def __repr__(self) -> str:
        return (
            f"<S3ClaimCheck s3://{self.bucket}/{self.prefix} threshold={self.threshold_bytes} "
            f"on {self.s3.describe()}>"
        )


def put_claim_check_lifecycle(
    bucket: str,
    prefix: str = DEFAULT_PREFIX,
    days: int = 1,
    *,
    client: Any = None,
) -> dict[str, Any]:
    """Add (or replace) the bucket lifecycle rule that expires claim-check objects after ``days``.

    Objects left behind by callers that timed out, by calls to keys nobody handles, or by a crash
    between read and delete are removed by this rule; other rules of the bucket are kept. Returns
    the rule. Raises S3IOException naming the bucket.
    """
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ConfigurationError(f"days must be an int >= 1, got {days!r}")
    s3 = S3Settings()
    client = client if client is not None else s3_client(s3)
    rule = {
        "ID": LIFECYCLE_RULE_ID,
        "Filter": {"Prefix": prefix},
        "Status": "Enabled",
        "Expiration": {"Days": days},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
    }
    try:
        try:
            rules = client.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchLifecycleConfiguration":
                raise
            rules = []
        rules = [r for r in rules if r.get("ID") != LIFECYCLE_RULE_ID] + [rule]
        client.put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration={"Rules": rules}
        )
    except (ClientError, BotoCoreError) as exc:
        raise s3_error("set the lifecycle rule of", exc, bucket, None, s3.describe()) from exc
    return rule
