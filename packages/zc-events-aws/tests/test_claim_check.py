"""The s3_claim_check middleware on the memory backend, against a real S3 API (moto server)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import zc_events
from zc_events import (
    ConfigurationError,
    Dispatcher,
    Envelope,
    EnvelopeError,
    EventClient,
    Middleware,
    Request,
    Response,
    Settings,
)
from zc_events.testing.conformance import BackendConformance
from zc_events.testing.handlers import HANDLERS
from zc_events_aws import (
    DEFAULT_PREFIX,
    MARKER,
    ClaimCheckError,
    S3ClaimCheck,
    put_claim_check_lifecycle,
    s3_client,
)

KeysIn = Callable[[str], list[str]]

pytestmark = pytest.mark.s3

MiB = 1024 * 1024


class WireRecorder(Middleware):
    """Placed after the claim check on the client: sees what the transport is given."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def outgoing_request(self, envelope: Envelope) -> Envelope:
        self.sizes.append(len(envelope.encode()))
        return envelope


class Deleter(Middleware):
    """Deletes the claim-check object behind a reference, as an expired lifecycle rule would."""

    def __init__(self, bucket: str, on: str) -> None:
        self.bucket, self.on = bucket, on

    def _delete(self, data: Any) -> None:
        if isinstance(data, dict) and MARKER in data:
            s3_client().delete_object(Bucket=self.bucket, Key=data[MARKER]["key"])

    def outgoing_request(self, envelope: Envelope) -> Envelope:
        if self.on == "request":
            self._delete(envelope.data)
        return envelope

    def outgoing_response(self, envelope: Envelope, response: Response) -> Response:
        if self.on == "response":
            self._delete(response.data)
        return response


Factory = Callable[..., EventClient]


@pytest.fixture
def make_client(bucket: str) -> Iterator[Factory]:
    """``make_client(client_mw=[...], server_mw=[...])``: a memory-backend client whose server
    serves the conformance handlers; both sides get an S3ClaimCheck on ``bucket`` first."""
    clients: list[EventClient] = []

    def make(
        client_mw: list[Any] = (),  # type: ignore[assignment]
        server_mw: list[Any] = (),  # type: ignore[assignment]
        **options: Any,
    ) -> EventClient:
        check = S3ClaimCheck(bucket=bucket, **options)
        dispatcher = Dispatcher([HANDLERS], [S3ClaimCheck(bucket=bucket, **options), *server_mw])
        client = EventClient("memory", dispatcher=dispatcher, middleware=[check, *client_mw])
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def test_small_messages_pass_untouched(make_client: Factory, bucket: str, keys_in: KeysIn) -> None:
    wire = WireRecorder()
    client = make_client(client_mw=[wire])
    response = client.post("conformance.echo", data={"blob": "x" * 100_000})
    assert response.data["data"] == {"blob": "x" * 100_000}
    assert wire.sizes[0] > 100_000
    assert keys_in(bucket) == []


def test_large_round_trip(make_client: Factory, bucket: str, keys_in: KeysIn) -> None:
    wire = WireRecorder()
    client = make_client(client_mw=[wire])
    blob = "ü" * (3 * MiB)
    response = client.post("conformance.echo", data={"blob": blob}, headers={"trace": "t-1"})
    assert response.has_errors is False, response.errors
    assert response.data["data"] == {"blob": blob}  # the handler saw the real body
    assert response.data["headers"] == {"trace": "t-1"}
    assert wire.sizes[0] < 1000  # the transport carried a reference
    assert keys_in(bucket) == []  # request and response objects were deleted by their readers


def test_only_the_large_side_goes_to_s3(make_client: Factory, bucket: str, keys_in: KeysIn) -> None:
    wire = WireRecorder()
    client = make_client(client_mw=[wire])
    response = client.post("conformance.add", data={"x": "a" * MiB, "y": "b"})
    assert response.data == {"answer": "a" * MiB + "b"}
    assert wire.sizes[0] < 1000
    response = client.get("conformance.echo", data={"n": 1})
    assert response.data["data"] == {"n": 1}
    assert keys_in(bucket) == []


def test_status_and_errors_survive(make_client: Factory) -> None:
    client = make_client(threshold_bytes=64)
    response = client.post("conformance.status", data={"blob": "x" * 1000})
    assert (response.status, response.data) == (201, {"blob": "x" * 1000})
    response = client.post("conformance.fail", data={"message": "m" * 1000})
    assert response.has_errors is True
    assert response.errors[0]["message"] == "m" * 1000


def test_no_wait_is_delivered_and_cleaned_up(
    make_client: Factory, bucket: str, keys_in: KeysIn
) -> None:
    client = make_client()
    token = str(uuid.uuid4())
    client.post_no_wait("conformance.record", data={"token": token, "blob": "y" * MiB})
    with client.batch() as batch:
        batch.post_no_wait("conformance.record", data={"token": token, "blob": "z" * MiB})
    client.backend.join(timeout=30)  # type: ignore[attr-defined]
    records = client.get("conformance.recorded", data={"token": token}).data
    assert sorted(r["data"]["blob"][0] for r in records) == ["y", "z"]
    assert keys_in(bucket) == []


def test_missing_request_object_is_an_error_response(make_client: Factory, bucket: str) -> None:
    client = make_client(client_mw=[Deleter(bucket, "request")])
    response = client.post("conformance.echo", data={"blob": "x" * MiB})
    assert response.has_errors is True
    error = response.errors[0]
    assert error["type"] == "ClaimCheckError"
    assert "is missing" in error["message"]
    assert f"s3://{bucket}/{DEFAULT_PREFIX}" in error["message"]
    assert "'conformance.echo'" in error["message"]
    # and the service keeps serving
    assert client.get("conformance.add", data={"x": 1, "y": 2}).data == {"answer": 3}


def test_missing_response_object_is_an_error_response(make_client: Factory, bucket: str) -> None:
    client = make_client(server_mw=[Deleter(bucket, "response")])
    response = client.post("conformance.echo", data={"blob": "x" * MiB})
    assert response.has_errors is True
    assert response.errors[0]["type"] == "ClaimCheckError"
    assert "the response to POST 'conformance.echo'" in response.errors[0]["message"]
    assert "is missing" in response.errors[0]["message"]


def test_reference_to_another_object_is_refused(
    make_client: Factory, bucket: str, keys_in: KeysIn
) -> None:
    s3_client().put_object(Bucket=bucket, Key="precious", Body=b"{}")

    class Forger(Middleware):
        def outgoing_request(self, envelope: Envelope) -> Envelope:
            if isinstance(envelope.data, dict) and MARKER in envelope.data:
                envelope.data = {MARKER: {"bucket": bucket, "key": "precious"}}
            return envelope

    client = make_client(client_mw=[Forger()])
    response = client.post("conformance.echo", data={"blob": "x" * MiB})
    assert response.errors[0]["type"] == "ClaimCheckError"
    assert (
        "configure the same s3_claim_check 'bucket' and 'prefix'" in response.errors[0]["message"]
    )
    assert "precious" in keys_in(bucket)


def test_marker_in_user_data_is_rejected(make_client: Factory) -> None:
    with pytest.raises(EnvelopeError, match="claim-check reference"):
        make_client().post("conformance.echo", data={MARKER: {"key": "x"}})


def test_bad_credentials_fail_the_call(
    make_client: Factory, monkeypatch: pytest.MonkeyPatch, keys_in: KeysIn, bucket: str
) -> None:
    client = make_client(aws_secret_access_key="wrong")
    with pytest.raises(ClaimCheckError, match="AWS_SECRET_ACCESS_KEY") as info:
        client.post("conformance.record", data={"token": "t", "blob": "x" * MiB})
    assert info.value.bucket == bucket
    assert info.value.code == "SignatureDoesNotMatch"
    assert client.get("conformance.recorded", data={"token": "t"}).data == []  # nothing was sent
    assert keys_in(bucket) == []


def test_missing_bucket_fails_the_call(aws: object) -> None:
    check = S3ClaimCheck(bucket="zc-events-no-such-bucket")
    dispatcher = Dispatcher([HANDLERS], [check])
    with EventClient("memory", dispatcher=dispatcher, middleware=[check], inline=False) as client:
        with pytest.raises(ClaimCheckError, match="the bucket does not exist") as info:
            client.post("conformance.echo", data={"blob": "x" * MiB})
        assert info.value.code == "NoSuchBucket"
        assert client.post("conformance.echo", data={"small": 1}).data["data"] == {"small": 1}


def test_configured_by_settings(bucket: str, keys_in: KeysIn) -> None:
    """The entry-point name and ZC_EVENTS_MIDDLEWARE_OPTIONS, on both sides."""
    zc_events.configure(
        backend="memory",
        middleware=["s3_claim_check"],
        middleware_options={"s3_claim_check": {"bucket": bucket, "threshold_bytes": 1024}},
    )
    zc_events.handlers.register("claim-check.shout", lambda request: request.data.upper())
    try:
        assert zc_events.post("claim-check.shout", data="a" * 5000).data == "A" * 5000
        assert isinstance(zc_events.default_client().middleware[0], S3ClaimCheck)
        assert keys_in(bucket) == []
    finally:
        zc_events.handlers.unregister("claim-check.shout")


def test_options_are_checked() -> None:
    with pytest.raises(ConfigurationError, match="needs a 'bucket' option"):
        S3ClaimCheck()
    with pytest.raises(ConfigurationError, match="threshold_bytes"):
        S3ClaimCheck(bucket="b", threshold_bytes=0)
    with pytest.raises(ConfigurationError, match="bad options"):
        EventClient(
            "memory",
            settings=Settings(
                {"ZC_EVENTS_MIDDLEWARE_OPTIONS": {"s3_claim_check": {"bucket": "b", "nope": 1}}}
            ),
            middleware=["s3_claim_check"],
        )


def test_lifecycle_rule(bucket: str) -> None:
    s3 = s3_client()
    other = {
        "ID": "keep-me",
        "Filter": {"Prefix": "logs/"},
        "Status": "Enabled",
        "Expiration": {"Days": 30},
    }
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [other]})
    put_claim_check_lifecycle(bucket, days=2)
    put_claim_check_lifecycle(bucket, days=1)  # replaces its own rule, keeps the others
    rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
    assert set(rules) == {"keep-me", "zc-events-claim-check"}
    mine = rules["zc-events-claim-check"]
    assert mine["Expiration"] == {"Days": 1}
    assert mine["Filter"] == {"Prefix": DEFAULT_PREFIX}


def test_request_handler_sees_plain_request(make_client: Factory) -> None:
    seen: list[Any] = []

    def spy(request: Request) -> int:
        seen.append(request.data)
        return len(request.data)

    HANDLERS.register("claim-check.spy", spy)
    try:
        assert make_client().post("claim-check.spy", data="q" * MiB).data == MiB
        assert seen == ["q" * MiB]
    finally:
        HANDLERS.unregister("claim-check.spy")


class TestConformanceWithClaimCheck(BackendConformance):
    """The whole conformance suite, on the memory backend, with every body above 512 bytes
    going through S3: the middleware must be invisible."""

    backend_name = "memory"

    @pytest.fixture
    def client(self, bucket: str) -> Iterator[EventClient]:
        check = S3ClaimCheck(bucket=bucket, threshold_bytes=512)
        dispatcher = Dispatcher([HANDLERS], [check])
        with EventClient(
            "memory", dispatcher=dispatcher, middleware=[check], inline=False
        ) as client:
            yield client


class RequestObjectSpy(Middleware):
    """Server side, after the claim check: is the request object still there when the response
    leaves the handler (before the worker replies and acknowledges)?"""

    def __init__(self, bucket: str) -> None:
        self.bucket = bucket
        self.seen: list[bool] = []

    def outgoing_response(self, envelope: Envelope, response: Response) -> Response:
        key = f"{DEFAULT_PREFIX}{envelope.id}.request.json"
        listed = s3_client().list_objects_v2(Bucket=self.bucket, Prefix=key)
        self.seen.append(listed.get("KeyCount", 0) == 1)
        return response


def test_request_object_outlives_the_handler_until_the_reply_arrived(
    make_client: Factory, bucket: str, keys_in: KeysIn
) -> None:
    """A worker that dies after the handler but before acknowledging leaves a redelivered
    message: its body must still be in S3. The client deletes it once the reply came."""
    spy = RequestObjectSpy(bucket)
    client = make_client(server_mw=[spy])
    assert client.post("conformance.echo", data={"blob": "x" * MiB}).ok
    assert spy.seen == [True]
    assert keys_in(bucket) == []


def test_a_failed_no_wait_keeps_its_body_for_replay(
    make_client: Factory, bucket: str, keys_in: KeysIn
) -> None:
    client = make_client()
    message_id = client.post_no_wait("conformance.fail", data={"message": "m" * MiB})
    client.backend.join(timeout=30)  # type: ignore[attr-defined]
    assert keys_in(bucket) == [f"{DEFAULT_PREFIX}{message_id}.request.json"]


def test_downloads_and_uploads_are_capped_by_the_size_limit(bucket: str, keys_in: KeysIn) -> None:
    big = Settings({"ZC_EVENTS_MAX_MESSAGE_BYTES": 8 * MiB})
    small = Settings({"ZC_EVENTS_MAX_MESSAGE_BYTES": MiB})
    dispatcher = Dispatcher([HANDLERS], [S3ClaimCheck(bucket=bucket, settings=small)])
    sender = S3ClaimCheck(bucket=bucket, settings=big)
    with EventClient("memory", dispatcher=dispatcher, middleware=[sender], settings=big) as c:
        response = c.post("conformance.echo", data={"blob": "x" * (2 * MiB)})
        assert response.errors[0]["type"] == "ClaimCheckError"
        assert "over ZC_EVENTS_MAX_MESSAGE_BYTES (1048576)" in response.errors[0]["message"]
    capped = S3ClaimCheck(bucket=bucket, settings=small)
    with (
        EventClient("memory", dispatcher=dispatcher, middleware=[capped], settings=big) as c,
        pytest.raises(EnvelopeError, match="ZC_EVENTS_MAX_MESSAGE_BYTES"),
    ):
        c.post("conformance.echo", data={"blob": "x" * (2 * MiB)})
