"""AMQP plumbing shared by the client backends: connection parameters and :class:`Link`.

A :class:`Link` is one pika ``BlockingConnection`` with two channels, used by one thread at a
time (the backends keep a pool of them):

- the *RPC channel* consumes RabbitMQ direct reply-to (``amq.rabbitmq.reply-to``) and publishes
  requests with ``mandatory``; a ``Basic.Return`` for the request in flight means "no route".
- the *confirm channel* is in publisher-confirm mode; many messages may be published before one
  wait for all their confirms (pipelining), which pika's ``BlockingChannel`` cannot do.

The hot path talks to pika's asynchronous channel objects (``BlockingChannel._impl``) and drives
I/O with ``BlockingConnection._flush_output``: the same primitives ``BlockingChannel`` itself is
built on, minus its event queueing. Those two private names are used only in this module (pika is
pinned to ``<2``).
"""

from __future__ import annotations

import contextlib
import logging
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pika
import pika.exceptions
from pika import spec

from zc_events import ConfigurationError

__all__ = [
    "CONNECTION_ERRORS",
    "REPLY_TO",
    "Link",
    "LinkLost",
    "Outgoing",
    "coalesce_output",
    "connection_parameters",
    "describe_url",
    "wait_until",
]

log = logging.getLogger("zc_events.rabbitmq")

#: RabbitMQ's direct reply-to pseudo queue.
REPLY_TO = "amq.rabbitmq.reply-to"

#: What pika raises when a connection or channel is unusable.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    pika.exceptions.AMQPError,
    OSError,
)


class LinkLost(Exception):
    """The connection or a channel of a :class:`Link` failed; the link must be discarded."""

    def __init__(
        self, message: str, sent: bool, confirmed: dict[int, str | None] | None = None
    ) -> None:
        super().__init__(message)
        #: False when nothing was handed to the socket, so a retry cannot duplicate.
        self.sent = sent
        #: For a batch: index → outcome of the messages the broker settled before the failure.
        self.confirmed = confirmed or {}


def describe_url(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[-1]
    user = parts.username or ""
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def connection_parameters(url: str, connection_name: str) -> pika.URLParameters:
    """pika parameters for ``url``, naming the connection (shown by ``rabbitmqctl``)."""
    try:
        scheme = urllib.parse.urlsplit(url).scheme
        if scheme not in ("amqp", "amqps"):
            raise ValueError(f"the scheme must be amqp or amqps, not {scheme!r}")
        params = pika.URLParameters(url)
    except Exception as exc:
        raise ConfigurationError(
            f"invalid RabbitMQ URL {describe_url(url)!r}: {exc} "
            "(expected amqp://user:password@host:port/vhost)"
        ) from exc
    properties = dict(params.client_properties or {})
    properties["connection_name"] = connection_name
    params.client_properties = properties
    return params


def wait_until(
    connection: pika.BlockingConnection, ready: Callable[[], bool], timeout: float
) -> bool:
    """Process I/O on ``connection`` until ``ready()`` or ``timeout`` seconds; return ``ready()``.

    Raises what pika raises when the connection closes meanwhile.
    """
    if ready():
        return True
    impl = connection._impl
    expired = False

    def on_timeout() -> None:
        nonlocal expired
        expired = True

    handle = impl.ioloop.call_later(max(timeout, 0.0), on_timeout)
    try:
        connection._flush_output(ready, lambda: expired)
    finally:
        impl.ioloop.remove_timeout(handle)
    return ready()


def coalesce_output(connection: pika.BlockingConnection) -> None:
    """Join the frames waiting in ``connection``'s send buffer into one chunk.

    pika sends every buffered frame with its own ``send()``: three for one message (method,
    header, body) and one more for an ack. On loopback each send costs a wake-up of the broker,
    so one send per batch of frames cuts the round-trip time noticeably. A no-op if pika's
    transport ever changes shape.
    """
    transport = getattr(connection._impl, "_transport", None)
    buffers = getattr(transport, "_tx_buffers", None)
    if buffers is not None and len(buffers) > 1:
        joined = b"".join(buffers)
        buffers.clear()
        buffers.append(joined)


@dataclass(slots=True)
class Outgoing:
    """One message to publish on the confirm channel."""

    exchange: str
    routing_key: str
    body: bytes
    properties: pika.BasicProperties
    mandatory: bool = True


class Link:
    """One connection with an RPC channel and a confirm channel; one thread at a time.

    ``setup(channel)`` runs once on a fresh connection (declare exchanges, queues) before use.
    """

    def __init__(
        self, params: pika.URLParameters, setup: Callable[[Any], None] | None = None
    ) -> None:
        self.connection = pika.BlockingConnection(params)
        try:
            rpc = self.connection.channel()
            if setup is not None:
                setup(rpc)
            self._rpc = rpc._impl
            self._rpc_blocking = rpc
            self._waiting: str | None = None
            self._reply: bytes | None = None
            self._returned: str | None = None
            consuming = False

            def on_consume_ok(_frame: Any) -> None:
                nonlocal consuming
                consuming = True

            self._rpc.add_on_return_callback(self._on_rpc_return)
            self._rpc.basic_consume(REPLY_TO, self._on_reply, auto_ack=True, callback=on_consume_ok)
            self._wait(lambda: consuming, params.socket_timeout or 10.0, "basic.consume")

            confirm = self.connection.channel()
            self._pub = confirm._impl
            self._pub_blocking = confirm
            self._tag = 0
            self._low = 1
            self._outstanding: set[int] = set()
            self._nacked: set[int] = set()
            self._returns: dict[str, str] = {}
            selected = False

            def on_select_ok(_frame: Any) -> None:
                nonlocal selected
                selected = True

            self._pub.add_on_return_callback(self._on_pub_return)
            self._pub.confirm_delivery(self._on_confirm, callback=on_select_ok)
            self._wait(lambda: selected, params.socket_timeout or 10.0, "confirm.select")
        except BaseException:
            self.close()
            raise
        self.last_used = time.monotonic()

    # -- helpers -------------------------------------------------------------------------
    def _wait(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        if not wait_until(self.connection, lambda: ready() or self._closed_channel(), timeout):
            raise pika.exceptions.AMQPConnectionError(f"no answer to {what} within {timeout:g} s")
        self._raise_if_channel_closed()

    def _closed_channel(self) -> bool:
        return bool(self._rpc_blocking.is_closed or getattr(self, "_pub", self._rpc).is_closed)

    def _raise_if_channel_closed(self) -> None:
        for channel in (self._rpc_blocking, getattr(self, "_pub_blocking", None)):
            if channel is not None and channel.is_closed:
                raise pika.exceptions.ChannelClosed(-1, f"channel {channel.channel_number} closed")

    @property
    def usable(self) -> bool:
        """False once the connection or a channel is known to be closed."""
        return bool(self.connection.is_open and not self._closed_channel())

    def probe(self) -> bool:
        """Process pending input (a Connection.Close, EOF, heartbeats); False if unusable."""
        try:
            self.connection.process_data_events(0)
        except CONNECTION_ERRORS:
            return False
        return self.usable

    # -- RPC ----------------------------------------------------------------------------
    def _on_reply(self, _channel: Any, _method: Any, properties: Any, body: bytes) -> None:
        if properties.correlation_id == self._waiting:
            self._reply = body
        else:
            log.debug("dropping a late reply (correlation id %s)", properties.correlation_id)

    def _on_rpc_return(self, _channel: Any, method: Any, properties: Any, _body: bytes) -> None:
        if properties.correlation_id == self._waiting:
            self._returned = f"{method.reply_code} {method.reply_text}"

    def call(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: pika.BasicProperties,
        timeout: float,
    ) -> tuple[bytes | None, str | None]:
        """Publish a request and wait for its reply: ``(reply, None)``, ``(None, return
        reason)`` when the broker could not route it, ``(None, None)`` on timeout.

        Raises :class:`LinkLost` if the connection or channel fails.
        """
        self._waiting = properties.correlation_id
        self._reply = None
        self._returned = None
        try:
            try:
                self._rpc.basic_publish(exchange, routing_key, body, properties, mandatory=True)
                coalesce_output(self.connection)
            except CONNECTION_ERRORS as exc:
                raise LinkLost(str(exc) or type(exc).__name__, sent=False) from exc
            try:
                wait_until(
                    self.connection,
                    lambda: (
                        self._reply is not None or self._returned is not None or self._rpc.is_closed
                    ),
                    timeout,
                )
            except CONNECTION_ERRORS as exc:
                raise LinkLost(str(exc) or type(exc).__name__, sent=True) from exc
            if self._rpc.is_closed:
                raise LinkLost(self._channel_reason(self._rpc_blocking), sent=True)
            return self._reply, self._returned
        finally:
            self._waiting = None
            self._reply = None
            self.last_used = time.monotonic()

    def publish(
        self, exchange: str, routing_key: str, body: bytes, properties: pika.BasicProperties
    ) -> None:
        """Publish a request whose reply comes another way (mandatory, no confirm), and
        flush it to the socket. :meth:`returned` later tells whether the broker returned it.

        Raises :class:`LinkLost` if the connection or channel fails.
        """
        self._waiting = properties.correlation_id
        self._returned = None
        try:
            self._rpc.basic_publish(exchange, routing_key, body, properties, mandatory=True)
            coalesce_output(self.connection)
        except CONNECTION_ERRORS as exc:
            raise LinkLost(str(exc) or type(exc).__name__, sent=False) from exc
        try:
            self.connection._flush_output()
        except CONNECTION_ERRORS as exc:
            raise LinkLost(str(exc) or type(exc).__name__, sent=True) from exc
        finally:
            self.last_used = time.monotonic()

    def returned(self, wait: float = 0.0) -> str | None:
        """Why the broker returned the message of the last :meth:`publish`, or None.

        ``wait`` is how long to wait for the broker's answer (a return arrives within one
        round trip of the publish, so a caller that waited for something else needs none).
        """
        with contextlib.suppress(*CONNECTION_ERRORS):
            wait_until(self.connection, lambda: self._returned is not None, wait)
        returned, self._returned, self._waiting = self._returned, None, None
        return returned

    # -- publisher confirms -----------------------------------------------------------------
    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        tag = method.delivery_tag
        nack = isinstance(method, spec.Basic.Nack)
        if method.multiple:
            tags: Sequence[int] = range(self._low, tag + 1)
            self._low = max(self._low, tag + 1)
        else:
            tags = (tag,)
        for t in tags:
            if t in self._outstanding:
                self._outstanding.discard(t)
                if nack:
                    self._nacked.add(t)

    def _on_pub_return(self, _channel: Any, method: Any, properties: Any, _body: bytes) -> None:
        message_id = properties.message_id or properties.correlation_id
        if message_id:
            self._returns[message_id] = f"{method.reply_code} {method.reply_text}"

    def publish_confirmed(self, messages: Sequence[Outgoing], timeout: float) -> list[str | None]:
        """Publish ``messages`` and wait once for all their confirms.

        Returns one entry per message: None when the broker took it, else the reason
        (``"312 NO_ROUTE"`` for a returned message, ``"nacked by the broker"``). Raises
        :class:`LinkLost` if the connection or channel fails, with ``confirmed``: index →
        outcome for the messages settled before the failure (the others must be published
        again), and ``TimeoutError`` when confirms do not arrive within ``timeout``.
        """
        tags: list[int] = []
        self._returns.clear()
        self._nacked.clear()
        sent = False
        try:
            for i, message in enumerate(messages):
                self._tag += 1
                self._outstanding.add(self._tag)
                tags.append(self._tag)
                self._pub.basic_publish(
                    message.exchange,
                    message.routing_key,
                    message.body,
                    message.properties,
                    mandatory=message.mandatory,
                )
                sent = True
                if i % 1000 == 999:  # let the socket drain on very large batches
                    coalesce_output(self.connection)
                    self.connection._flush_output()
            coalesce_output(self.connection)
            done = wait_until(
                self.connection, lambda: not self._outstanding or self._pub.is_closed, timeout
            )
        except CONNECTION_ERRORS as exc:
            confirmed = self._confirmed(messages, tags)
            raise LinkLost(str(exc) or type(exc).__name__, sent, confirmed) from exc
        finally:
            self.last_used = time.monotonic()
        if self._pub.is_closed:
            confirmed = self._confirmed(messages, tags)
            raise LinkLost(self._channel_reason(self._pub_blocking), True, confirmed)
        if done:
            self._low = self._tag + 1  # every earlier tag is settled
        else:
            raise TimeoutError(f"the broker did not confirm the messages within {timeout:g} s")
        return self._outcomes(messages, tags)

    def _outcomes(self, messages: Sequence[Outgoing], tags: list[int]) -> list[str | None]:
        out: list[str | None] = []
        for message, tag in zip(messages, tags, strict=False):
            if tag in self._nacked:
                out.append("nacked by the broker")
            else:
                props = message.properties
                out.append(self._returns.get(props.message_id or props.correlation_id or ""))
        return out

    def _confirmed(self, messages: Sequence[Outgoing], tags: list[int]) -> dict[int, str | None]:
        """Index → outcome for the messages confirmed before a failure."""
        outcomes = self._outcomes(messages, tags)
        return {
            i: outcomes[i]
            for i, tag in enumerate(tags)
            if tag not in self._outstanding and tag not in self._nacked
        }

    @staticmethod
    def _channel_reason(channel: Any) -> str:
        reason = getattr(channel, "_closing_reason", None)
        return f"channel closed: {reason}" if reason is not None else "channel closed"

    def close(self) -> None:
        """Close the connection, ignoring errors (it may be dead already)."""
        try:
            if self.connection.is_open:
                self.connection.close()
        except Exception:
            log.debug("error closing a RabbitMQ connection", exc_info=True)
