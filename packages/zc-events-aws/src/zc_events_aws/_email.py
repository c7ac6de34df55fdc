"""``send_email``: upload bodies and attachments to S3, then send the ``send_email`` notification
(the legacy message on legacy-compatible backends, the ``send_email`` key on the others)."""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

import zc_events
from zc_events import EventClient, Settings, ZcEventsError, legacy, new_id

from ._notifications import send_notification
from ._s3 import save_file_contents_to_s3, save_string_contents_to_s3

__all__ = [
    "DEFAULT_EMAIL_BUCKET",
    "EMAIL_EVENT",
    "EMAIL_ROUTING_KEY",
    "InvalidEmail",
    "email_notification_message",
    "send_email",
]

log = logging.getLogger("zc_events.aws")

#: The event key, as the old library used it.
EMAIL_EVENT = "send_email"
#: Routing key of the legacy notification on ``NOTIFICATIONS_EXCHANGE``.
EMAIL_ROUTING_KEY = "microservice.notification.email"
#: The bucket the old library hard-coded; ``AWS_S3_EMAIL_BUCKET`` or ``bucket=`` override it.
DEFAULT_EMAIL_BUCKET = "zc-mp-email"

Recipients = str | Sequence[str] | None
Attachment = tuple[str, str, "str | bytes"] | str | os.PathLike[str]


class InvalidEmail(ZcEventsError, TypeError, ValueError):
    """The arguments of :func:`send_email` are not valid (a TypeError, as the old helper raised)."""


def _recipients(name: str, value: Recipients) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        items = [part.strip() for part in value.split(",")]
        return [part for part in items if part] or None
    if not isinstance(value, list | tuple):
        raise InvalidEmail(
            f"'{name}' must be a string of comma-separated addresses or a list of strings, "
            f"got {type(value).__name__}: {value!r}"
        )
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise InvalidEmail(f"'{name}' must hold non-empty strings, got {item!r}")
    return list(value)


def _folder(email_id: str) -> str:
    return f"{date.today().isoformat()}/{int(time.time())}_{email_id}"


def send_email(
    client: EventClient | None = None,
    *,
    from_email: str | None = None,
    to: Recipients = None,
    cc: Recipients = None,
    bcc: Recipients = None,
    reply_to: Recipients = None,
    subject: str | None = None,
    plaintext_body: str | None = None,
    html_body: str | None = None,
    headers: dict[str, Any] | None = None,
    files: Iterable[str | os.PathLike[str]] | None = None,
    attachments: Iterable[Attachment] | None = None,
    user_id: Any = None,
    resource_type: str | None = None,
    resource_id: Any = None,
    is_transactional: bool = False,
    unsubscribe_group: Any = None,
    bucket: str | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Upload the bodies and attachments to S3, then send the ``send_email`` notification.

    On a legacy-compatible backend (``rabbitmq_legacy``, ``celery``) that is the old message on
    ``NOTIFICATIONS_EXCHANGE`` (required) with routing key ``microservice.notification.email``,
    byte for byte as the old ``EventClient.send_email``; on the others a ``post_no_wait`` to the
    ``send_email`` key with the same data (:func:`send_notification`).

    ``to``, ``cc``, ``bcc`` and ``reply_to`` are lists of addresses or comma-separated strings; not
    all may be empty. ``attachments`` are ``(filename, content_type, content)`` tuples (content
    str or bytes) or file paths; ``files`` are file paths (the old name). Objects go to ``bucket``
    (default: the ``AWS_S3_EMAIL_BUCKET`` setting, else ``zc-mp-email``) under
    ``<date>/<timestamp>_<email id>/``. ``client`` defaults to the module-level default client.

    Returns the event data: the same fields, in the same order, as the old helper sent.
    Raises InvalidEmail before uploading anything, S3IOException when an upload fails,
    ConfigurationError when a legacy backend has no ``NOTIFICATIONS_EXCHANGE``.
    """
    to_list = _recipients("to", to)
    cc_list = _recipients("cc", cc)
    bcc_list = _recipients("bcc", bcc)
    reply_to_list = _recipients("reply_to", reply_to)
    if not any([to_list, cc_list, bcc_list, reply_to_list]):
        raise InvalidEmail("'to', 'cc', 'bcc' and 'reply_to' can't all be empty")
    if headers is not None and not isinstance(headers, dict):
        raise InvalidEmail(f"'headers' must be a dict, got {type(headers).__name__}")
    uploads: list[tuple[str, str | bytes | None, str | None]] = []  # (name, content, path)
    for item in [*(attachments or ()), *(files or ())]:
        if isinstance(item, tuple):
            if len(item) != 3 or not isinstance(item[2], str | bytes):
                raise InvalidEmail(
                    "an attachment must be a file path or a (filename, content_type, content) "
                    f"tuple with str or bytes content, got {item!r:.200}"
                )
            uploads.append((str(item[0]), item[2], None))
        elif isinstance(item, str | os.PathLike):
            path = os.fspath(item)
            if not os.path.isfile(path):
                raise InvalidEmail(f"attachment file {path!r} does not exist")
            uploads.append((os.path.basename(path), None, path))
        else:
            raise InvalidEmail(
                f"an attachment must be a file path or a (filename, content_type, content) tuple, "
                f"got {type(item).__name__}"
            )

    s = settings if settings is not None else zc_events.get_settings()
    bucket = str(bucket or s.get("AWS_S3_EMAIL_BUCKET", None) or DEFAULT_EMAIL_BUCKET)
    email_id = str(uuid.uuid4())
    folder = _folder(email_id)
    log.info("send_email %s: uploading to s3://%s/%s/", email_id, bucket, folder)

    html_body_key = None
    if html_body:
        html_body_key = save_string_contents_to_s3(
            html_body, bucket, f"{folder}/html", content_type="text/html; charset=utf-8"
        )
    plaintext_body_key = None
    if plaintext_body:
        plaintext_body_key = save_string_contents_to_s3(
            plaintext_body, bucket, f"{folder}/plaintext", content_type="text/plain; charset=utf-8"
        )
    attachments_keys: list[str] = []
    for name, content, filepath in uploads:
        key = f"{folder}/attachment_{name}"
        if filepath is not None:
            attachments_keys.append(save_file_contents_to_s3(filepath, bucket, key))
        else:
            assert content is not None
            attachments_keys.append(save_string_contents_to_s3(content, bucket, key))

    data: dict[str, Any] = {
        "task_id": email_id,
        "from_email": from_email,
        "to": to_list,
        "cc": cc_list,
        "bcc": bcc_list,
        "reply_to": reply_to_list,
        "subject": subject,
        "plaintext_body_key": plaintext_body_key,
        "html_body_key": html_body_key,
        "attachments_keys": attachments_keys,
        "headers": headers,
        "user_id": user_id,
        "resource_type": resource_type,
        "resource_id": resource_id,
        "is_transactional": bool(is_transactional),
    }
    if unsubscribe_group is not None:
        data["unsubscribe_group"] = unsubscribe_group
    message_id = send_notification(client, "email", EMAIL_EVENT, **data)
    log.info(
        "send_email %s: sent %r (message %s) to %s", email_id, EMAIL_EVENT, message_id, to_list
    )
    return data


def email_notification_message(
    data: dict[str, Any], message_id: str | None = None
) -> dict[str, Any]:
    """The legacy notification body for ``send_email`` event data (as the old library published
    it on ``NOTIFICATIONS_EXCHANGE`` with routing key :data:`EMAIL_ROUTING_KEY`): a Celery
    protocol-1 task message ``{"task": "microservice.notification", "id", "args", "kwargs"}``.

    ``message_id`` defaults to a new uuid4. :func:`send_email` publishes it already on the
    legacy-compatible backends; the wire bytes are :func:`zc_events.legacy.notification_message`.
    """
    return {
        "task": legacy.NOTIFICATION_TASK,
        "id": message_id or new_id(),
        "args": [EMAIL_EVENT],
        "kwargs": dict(data),
    }
