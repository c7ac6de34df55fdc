"""send_email: validation as the old helper did, uploads to S3, and the legacy event shape."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from zc_events import Dispatcher, EventClient, HandlerRegistry, Request
from zc_events_aws import (
    EMAIL_ROUTING_KEY,
    InvalidEmail,
    S3IOException,
    email_notification_message,
    read_s3_file_as_string,
    send_email,
)

KeysIn = Callable[[str], list[str]]

#: Golden capture recorded from zc_events 0.4.1, kept at the repository root.
WIRE = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "legacy-wire"
CAPTURE = WIRE / "email_notification.json"
#: ``also_captured_via_send_email.body.json`` of the capture above: what the old
#: ``EventClient().send_email(from_email='noreply@example.com', to='a@example.com,b@example.com',
#: subject='Hello', user_id='2', resource_type='Order', resource_id='1')`` published.
LEGACY_MESSAGE: dict[str, Any] = {
    "task": "microservice.notification",
    "id": "fa96c592-7581-4b5a-b908-ce63c610e9f1",
    "args": ["send_email"],
    "kwargs": {
        "task_id": "4172e7f2-a6ea-4e68-ae81-877a518985da",
        "from_email": "noreply@example.com",
        "to": ["a@example.com", "b@example.com"],
        "cc": None,
        "bcc": None,
        "reply_to": None,
        "subject": "Hello",
        "plaintext_body_key": None,
        "html_body_key": None,
        "attachments_keys": [],
        "headers": None,
        "user_id": "2",
        "resource_type": "Order",
        "resource_id": "1",
        "is_transactional": False,
    },
}


class Mailer:
    """A service handling ``send_email`` on the memory backend, recording what it received."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        registry = HandlerRegistry({"send_email": self.handle})
        self.client = EventClient("memory", dispatcher=Dispatcher([registry]))

    def handle(self, request: Request) -> None:
        with self.lock:
            self.received.append(request.data)

    def wait(self) -> list[dict[str, Any]]:
        self.client.backend.join(timeout=10)  # type: ignore[attr-defined]
        return self.received


@pytest.fixture
def mailer() -> Iterator[Mailer]:
    m = Mailer()
    yield m
    m.client.close()


def test_legacy_message_is_the_capture() -> None:
    captured = json.loads(CAPTURE.read_text())["also_captured_via_send_email"]
    assert captured["body"]["json"] == LEGACY_MESSAGE
    assert list(captured["body"]["json"]["kwargs"]) == list(LEGACY_MESSAGE["kwargs"])
    assert captured["amqp"]["routing_key"] == EMAIL_ROUTING_KEY


# -- validation (no S3 needed: nothing is uploaded when the arguments are wrong) ----------------
@pytest.mark.parametrize(
    "recipients",
    [
        {},
        {"to": None, "cc": None, "bcc": None, "reply_to": None},
        {"to": "", "cc": []},
        {"to": " , "},
    ],
)
def test_recipients_cannot_all_be_empty(mailer: Mailer, recipients: dict[str, Any]) -> None:
    with pytest.raises(TypeError, match="can't all be empty"):
        send_email(mailer.client, from_email="a@example.com", subject="s", **recipients)
    assert mailer.wait() == []


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("to", {"to": "x@example.com"}, "'to' must be a string of comma-separated addresses"),
        ("cc", 42, "'cc' must be"),
        ("bcc", ["ok@example.com", None], "'bcc' must hold non-empty strings"),
    ],
)
def test_bad_recipient_types(mailer: Mailer, field: str, value: Any, message: str) -> None:
    with pytest.raises(InvalidEmail, match=message) as info:
        send_email(mailer.client, **{"to": "a@example.com", field: value})
    assert isinstance(info.value, TypeError)  # what the old helper raised
    assert mailer.wait() == []


def test_bad_attachment(mailer: Mailer, tmp_path: Path) -> None:
    with pytest.raises(InvalidEmail, match="does not exist"):
        send_email(mailer.client, to="a@example.com", attachments=[str(tmp_path / "missing.pdf")])
    with pytest.raises(InvalidEmail, match="filename, content_type, content"):
        send_email(mailer.client, to="a@example.com", attachments=[("a.pdf", "application/pdf")])  # type: ignore[list-item]
    assert mailer.wait() == []


# -- against S3 ------------------------------------------------------------------------------
@pytest.mark.s3
def test_no_bodies_matches_the_legacy_event(mailer: Mailer, bucket: str, keys_in: KeysIn) -> None:
    legacy = LEGACY_MESSAGE["kwargs"]
    data = send_email(
        mailer.client,
        from_email="noreply@example.com",
        to="a@example.com,b@example.com",
        subject="Hello",
        user_id="2",
        resource_type="Order",
        resource_id="1",
        bucket=bucket,
    )
    [received] = mailer.wait()
    assert received == data
    assert list(received) == list(legacy)  # the same fields in the same order
    assert {**received, "task_id": legacy["task_id"]} == legacy
    assert re.fullmatch(r"[0-9a-f-]{36}", received["task_id"])
    assert keys_in(bucket) == []  # no bodies: nothing uploaded

    message = email_notification_message(received, message_id=LEGACY_MESSAGE["id"])
    assert {
        **message,
        "kwargs": {**message["kwargs"], "task_id": legacy["task_id"]},
    } == LEGACY_MESSAGE
    assert list(message) == list(LEGACY_MESSAGE)


@pytest.mark.s3
def test_bodies_and_attachments_are_uploaded(
    mailer: Mailer, bucket: str, tmp_path: Path, keys_in: KeysIn
) -> None:
    path = tmp_path / "menu.pdf"
    path.write_bytes(b"%PDF-1.4 menu")
    data = send_email(
        mailer.client,
        from_email="noreply@example.com",
        to=["a@example.com"],
        cc="c1@example.com, c2@example.com",
        subject="Your order",
        html_body="<p>Bon appétit</p>",
        plaintext_body="Bon appétit",
        attachments=[("invoice.pdf", "application/pdf", b"%PDF-1.4 invoice"), str(path)],
        files=[path],
        headers={"X-Order": "1"},
        is_transactional=True,
        unsubscribe_group=7,
        bucket=bucket,
    )
    [received] = mailer.wait()
    assert received == data
    assert received["cc"] == ["c1@example.com", "c2@example.com"]
    assert received["is_transactional"] is True
    assert received["unsubscribe_group"] == 7
    folder = received["html_body_key"].rsplit("/", 1)[0]
    assert folder.endswith("_" + received["task_id"])
    assert received["html_body_key"] == f"{folder}/html"
    assert received["plaintext_body_key"] == f"{folder}/plaintext"
    assert received["attachments_keys"] == [
        f"{folder}/attachment_invoice.pdf",
        f"{folder}/attachment_menu.pdf",
        f"{folder}/attachment_menu.pdf",
    ]
    assert (
        read_s3_file_as_string(bucket, received["html_body_key"]).decode() == "<p>Bon appétit</p>"
    )
    assert read_s3_file_as_string(bucket, received["attachments_keys"][0]) == b"%PDF-1.4 invoice"
    assert read_s3_file_as_string(bucket, received["attachments_keys"][1]) == b"%PDF-1.4 menu"
    assert len(keys_in(bucket)) == 4


@pytest.mark.s3
def test_bucket_from_settings(mailer: Mailer, bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_S3_EMAIL_BUCKET", bucket)
    data = send_email(mailer.client, to="a@example.com", html_body="<p>hi</p>")
    assert read_s3_file_as_string(bucket, data["html_body_key"]) == b"<p>hi</p>"


@pytest.mark.s3
def test_bad_credentials_fire_nothing(
    mailer: Mailer, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with pytest.raises(S3IOException, match=f"s3://{bucket}/.*/html") as info:
        send_email(mailer.client, to="a@example.com", html_body="<p>hi</p>", bucket=bucket)
    assert info.value.code == "SignatureDoesNotMatch"
    assert mailer.wait() == []


@pytest.mark.s3
def test_missing_bucket_fires_nothing(mailer: Mailer, aws: object) -> None:
    with pytest.raises(S3IOException, match="the bucket does not exist"):
        send_email(
            mailer.client, to="a@example.com", plaintext_body="hi", bucket="zc-no-such-bucket"
        )
    assert mailer.wait() == []
