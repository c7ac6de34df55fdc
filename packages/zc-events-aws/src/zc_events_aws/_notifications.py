"""Legacy notifications: ``emit_microservice_<kind>_notification`` of the old ``EventClient``.

On a backend that speaks the old wire (``rabbitmq_legacy``, ``celery``: those implementing
:class:`zc_events.legacy.NotificationPublisher`) a notification is published exactly as the old
library did: a protocol-1 ``microservice.notification`` task on the topic exchange
``NOTIFICATIONS_EXCHANGE`` with routing key ``microservice.notification.<kind>``. On any other
backend it is an ordinary ``post_no_wait`` to the handler named by the event type, with the
same ``data`` a legacy consumer would hand that handler.
"""

from __future__ import annotations

import logging
from typing import Any

import zc_events
from zc_events import EventClient, legacy, new_id

__all__ = [
    "emit_microservice_email_notification",
    "emit_microservice_push_notification",
    "emit_microservice_slack_notification",
    "emit_microservice_text_notification",
    "send_notification",
]

log = logging.getLogger("zc_events.aws")


def send_notification(
    client: EventClient | None,
    kind: str,
    event_type: str,
    /,
    *args: Any,
    priority: int = 0,
    **kwargs: Any,
) -> str:
    """Send a notification of ``kind`` (``email``, ``text``, ``push`` or ``slack``) for the
    handler ``event_type`` with keyword arguments ``kwargs``; returns the message id.

    ``client`` (None: the module-level default client) decides how:

    - legacy-compatible backend (``rabbitmq_legacy``, ``celery``): the old message
      ``{"task": "microservice.notification", "id", "args": [event_type, *args], "kwargs":
      {"task_id": id, **kwargs}}`` on ``NOTIFICATIONS_EXCHANGE`` (required) with routing key
      ``microservice.notification.<kind>`` and AMQP ``priority``, returning once the broker
      confirmed it (NoRouteError when no service consumes that kind);
    - any other backend: ``post_no_wait(event_type, data={"task_id": id, **kwargs})``, extra
      positional ``args`` in the ``legacy_args`` header: what a legacy consumer hands the
      handler too.

    A ``task_id`` in ``kwargs`` (``send_email``'s email id) replaces the message id in ``data``.
    """
    client = client if client is not None else zc_events.default_client()
    backend = client.backend
    log.info(
        "notification %r (%s) for resource (%s:%s) and user %s",
        event_type,
        kind,
        kwargs.get("resource_type"),
        kwargs.get("resource_id"),
        kwargs.get("user_id"),
    )
    if isinstance(backend, legacy.NotificationPublisher):
        message_id = new_id()
        message = legacy.notification_message(
            event_type, args, kwargs, message_id=message_id, priority=priority
        )
        backend.publish_notification(kind, message)
        return message_id
    legacy.notification_routing_key(kind)  # the same check on every backend
    data: dict[str, Any] = {"task_id": new_id()}
    data.update(kwargs)
    headers = {legacy.EVENT_ARGS_HEADER: list(args)} if args else None
    return client.post_no_wait(event_type, data=data, headers=headers, priority=priority)


def emit_microservice_email_notification(
    client: EventClient | None, event_type: str, /, *args: Any, priority: int = 0, **kwargs: Any
) -> str:
    """``EventClient.emit_microservice_email_notification(event_type, **kwargs)`` of the old
    library (routing key ``microservice.notification.email``): see :func:`send_notification`."""
    return send_notification(client, "email", event_type, *args, priority=priority, **kwargs)


def emit_microservice_text_notification(
    client: EventClient | None, event_type: str, /, *args: Any, priority: int = 0, **kwargs: Any
) -> str:
    """``EventClient.emit_microservice_text_notification(event_type, **kwargs)`` of the old
    library (routing key ``microservice.notification.text``): see :func:`send_notification`."""
    return send_notification(client, "text", event_type, *args, priority=priority, **kwargs)


def emit_microservice_push_notification(
    client: EventClient | None, event_type: str, /, *args: Any, priority: int = 0, **kwargs: Any
) -> str:
    """``EventClient.emit_microservice_push_notification(event_type, **kwargs)`` of the old
    library (routing key ``microservice.notification.push``): see :func:`send_notification`."""
    return send_notification(client, "push", event_type, *args, priority=priority, **kwargs)


def emit_microservice_slack_notification(
    client: EventClient | None, event_type: str, /, *args: Any, priority: int = 0, **kwargs: Any
) -> str:
    """``EventClient.emit_microservice_slack_notification(event_type, **kwargs)`` of the old
    library (routing key ``microservice.notification.slack``): see :func:`send_notification`."""
    return send_notification(client, "slack", event_type, *args, priority=priority, **kwargs)
