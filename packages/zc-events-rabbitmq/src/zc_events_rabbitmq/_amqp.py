"""AMQP plumbing shared by the client backends: connection parameters and :class:`Link`.

A :class:`Link` is one pika ``BlockingConnection`` with two channels, used by one thread at a
time (the backends keep a pool of them):

- the *RPC channel* consumes RabbitMQ direct reply-to (``amq.rabbitmq.reply-to``) and publishes
  requests with ``mandatory``; a ``Basic.Return`` for the request in flight means "no route".
- the *confirm channel* is in publisher-confirm mode; many messages may be published before one
  wait for all their confirms (pipelining), which pika's ``BlockingChannel`` cannot do.

The hot path talks to pika's asynchronous channel objects (``BlockingChannel._impl``) and drives
I/O with ``BlockingConnection._flush_output``: the same primitives ``BlockingChannel`` itself is
built on, minus its event queueing. Those two private names are reached only through
:func:`impl_of` and :func:`flush_output` (pika is pinned to ``<2``).
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import pika
import pika.exceptions
from pika import spec

from zc_events import ConfigurationError, mask_secrets

__all__ = [
    "CONNECTION_ERRORS",
    "REPLY_TO",
    "Link",
    "LinkLost",
    "Nodes",
    "Outgoing",
    "coalesce_output",
    "connection_parameters",
    "describe_connection_error",
    "describe_url",
    "is_refused",
    "quiet_pika",
    "split_urls",
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
    masked: str = mask_secrets(url)
    return masked


#: pika modules that log a connection failure (often with a traceback) before raising it.
PIKA_CONNECTION_LOGGERS = (
    "pika.connection",
    "pika.channel",
    "pika.adapters.base_connection",
    "pika.adapters.blocking_connection",
    "pika.adapters.select_connection",
    "pika.adapters.utils.connection_workflow",
    "pika.adapters.utils.io_services_utils",
    "pika.adapters.utils.selector_ioloop_adapter",
)


_quiet = threading.local()


class _QuietUnlessDebug(logging.Filter):
    """Inside :func:`quiet_pika`: drop a pika record unless its logger is enabled for DEBUG
    (then keep it, as DEBUG). Elsewhere (someone else's pika code): keep it as it is."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(_quiet, "depth", 0):
            return True
        if not logging.getLogger(record.name).isEnabledFor(logging.DEBUG):
            return False
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


_QUIET = _QuietUnlessDebug()
for _name in PIKA_CONNECTION_LOGGERS:
    logging.getLogger(_name).addFilter(_QUIET)


@contextlib.contextmanager
def quiet_pika() -> Iterator[None]:
    """Silence, in this thread, pika's own log lines about failed and lost connections.

    pika logs every failed connection attempt at ERROR, with tracebacks, from half a dozen
    modules, then raises the error. zc-events reports that error itself (one line naming the
    URL without its password), so pika's lines would only repeat it, a dozen times. They come
    back, at DEBUG, when the ``pika`` logger is set to DEBUG.
    """
    depth = getattr(_quiet, "depth", 0)
    _quiet.depth = depth + 1
    try:
        yield
    finally:
        _quiet.depth = depth


#: pika's connection errors carry the broker's reason as text: "(403) 'ACCESS_REFUSED - ...'".
_BROKER_REASON = re.compile(r"\((\d{3})\) '([^']*)'")


def _broker_reason(exc: BaseException) -> str:
    """The broker's ``code TEXT`` from a pika connection error, or ''."""
    if isinstance(exc, pika.exceptions.ConnectionClosed | pika.exceptions.ChannelClosed):
        return f"{exc.reply_code} {exc.reply_text}"
    match = _BROKER_REASON.search(str(exc))
    if match is None:
        return ""
    text = match.group(2).split(". For details", 1)[0]
    return f"{match.group(1)} {text}"


def is_refused(exc: BaseException) -> bool:
    """True when the broker refused the login, the virtual host or a permission: retrying
    cannot help (as opposed to a broker that cannot be reached, or that restarts)."""
    if isinstance(
        exc,
        pika.exceptions.AuthenticationError
        | pika.exceptions.ProbableAuthenticationError
        | pika.exceptions.ProbableAccessDeniedError,
    ):
        return True
    if isinstance(exc, pika.exceptions.ConnectionClosedByBroker | pika.exceptions.ChannelClosed):
        return exc.reply_code in (403, 530)
    return False


class NoNodeAnswered(pika.exceptions.AMQPConnectionError):
    """No node of a cluster could be reached; the message names each node and why."""

    def __str__(self) -> str:
        return f"no node answered ({self.args[0]})"


def _innermost(exc: BaseException) -> BaseException:
    """The socket error inside pika's ``AMQPConnectionError(AMQPConnector...Error(exc))``."""
    while isinstance(exc, pika.exceptions.AMQPConnectionError) and exc.args:
        inner = getattr(exc.args[0], "exception", exc.args[0])
        if not isinstance(inner, BaseException):
            break
        exc = inner
    return exc


def describe_connection_error(exc: BaseException) -> str:
    """One short line saying why a connection to RabbitMQ failed (no traceback, no password)."""
    if isinstance(exc, NoNodeAnswered):
        return str(exc)
    reason = _broker_reason(exc)
    if isinstance(
        exc, pika.exceptions.AuthenticationError | pika.exceptions.ProbableAuthenticationError
    ):
        return (
            f"the broker refused the login ({reason or exc}): check the user name and password "
            "in the URL"
        )
    if isinstance(exc, pika.exceptions.ProbableAccessDeniedError) or (
        is_refused(exc) and "530" in reason
    ):
        return (
            f"the broker refused access to the virtual host ({reason or exc}): check the vhost "
            "at the end of the URL (%2F is the default '/') and the user's permissions on it"
        )
    if is_refused(exc):
        return (
            f"the broker refused an operation ({reason}): grant the user configure, write "
            "and read permissions on the vhost (rabbitmqctl set_permissions)"
        )
    if reason:
        what = "channel" if isinstance(exc, pika.exceptions.ChannelClosed) else "connection"
        return f"the broker closed the {what} ({reason})"
    inner = _innermost(exc)
    if isinstance(inner, ConnectionRefusedError):
        return "connection refused (is RabbitMQ running and listening on that host and port?)"
    if isinstance(inner, socket.gaierror):
        return f"cannot resolve the host name ({inner.strerror})"
    if isinstance(inner, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(inner, OSError) and inner.strerror:
        return inner.strerror
    if isinstance(inner, pika.exceptions.StreamLostError):
        return "the connection was lost"
    text = str(inner).strip("(),'\" ")
    return f"{type(inner).__name__}: {text}" if text else type(inner).__name__


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


def split_urls(url: str) -> list[str]:
    """The node URLs of ``url``: one URL, or several separated by ``;`` (as kombu does)."""
    urls = [part.strip() for part in url.split(";") if part.strip()]
    if not urls:
        raise ConfigurationError(
            f"invalid RabbitMQ URL {url!r}: no URL in it (expected amqp://user:password@host:port/"
            "vhost, or several separated by ';')"
        )
    return urls


T = TypeVar("T")


class Nodes:
    """The nodes of a cluster (the URLs of ``url``), and which one to try first.

    :meth:`connect` tries each node in turn, starting with the one that worked last, and
    stays on the first that answers; :meth:`lost` moves the start to the next node, so a
    node that died is tried last (a dead host may take a connect timeout to fail).
    """

    def __init__(self, url: str, connection_name: str) -> None:
        self.urls = split_urls(url)
        self.params = [connection_parameters(u, connection_name) for u in self.urls]
        self._next = 0

    def __len__(self) -> int:
        return len(self.urls)

    def copy(self) -> Nodes:
        """The same nodes with an order of their own (a worker's, apart from the client's)."""
        other = Nodes.__new__(Nodes)
        other.urls, other.params, other._next = self.urls, self.params, 0
        return other

    def connect(self, make: Callable[[pika.URLParameters], T]) -> tuple[T, str]:
        """``make(params)`` on the first node that answers: ``(result, its URL masked)``.

        A refused login, vhost or permission, or a channel the broker closed, is raised at
        once (every node would say the same); when no node answers, the last node's error is
        raised (its message names every node that failed, with why).
        """
        count = len(self.params)
        start = self._next % count
        failures: list[str] = []
        for k in range(count):
            i = (start + k) % count
            try:
                result = make(self.params[i])
            except CONNECTION_ERRORS as exc:
                if is_refused(exc) or isinstance(exc, pika.exceptions.ChannelClosedByBroker):
                    raise
                failures.append(f"{describe_url(self.urls[i])}: {describe_connection_error(exc)}")
                if k == count - 1:
                    if count > 1:
                        raise NoNodeAnswered("; ".join(failures)) from exc
                    raise
                continue
            self._next = i
            node = describe_url(self.urls[i])
            if failures:
                log.info("connected to RabbitMQ at %s (%s)", node, "; ".join(failures))
            return result, node
        raise AssertionError("unreachable")  # pragma: no cover

    def ordered(self) -> list[str]:
        """The URLs in the order :meth:`connect` tries them (for the asyncio backend)."""
        start = self._next % len(self.urls)
        return self.urls[start:] + self.urls[:start]

    def connected(self, url: str) -> str:
        """Record that ``url`` answered (it is tried first from now on); its masked name."""
        if url in self.urls:
            self._next = self.urls.index(url)
        return describe_url(url)

    def lost(self, node: str) -> None:
        """The connection to ``node`` (as :meth:`connect` named it) was lost: try the next
        node first from now on."""
        for i, url in enumerate(self.urls):
            if describe_url(url) == node and self._next % len(self.urls) == i:
                self._next = i + 1


def impl_of(blocking: Any) -> Any:
    """The asynchronous pika object behind a ``BlockingConnection`` or ``BlockingChannel``
    (pika's private ``_impl``; see the module docstring)."""
    return blocking._impl


def flush_output(connection: Any, *done: Callable[[], bool]) -> None:
    """Drive ``connection``'s I/O until one of ``done`` is true, or once when none is given
    (pika's private ``BlockingConnection._flush_output``; see the module docstring)."""
    connection._flush_output(*done)


def wait_until(
    connection: pika.BlockingConnection, ready: Callable[[], bool], timeout: float
) -> bool:
    """Process I/O on ``connection`` until ``ready()`` or ``timeout`` seconds; return ``ready()``.

    Raises what pika raises when the connection closes meanwhile.
    """
    if ready():
        return True
    impl = impl_of(connection)
    expired = False

    def on_timeout() -> None:
        nonlocal expired
        expired = True

    handle = impl.ioloop.call_later(max(timeout, 0.0), on_timeout)
    try:
        flush_output(connection, ready, lambda: expired)
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
    transport = getattr(impl_of(connection), "_transport", None)
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
    :attr:`node` names the node it is connected to (its URL, password masked).
    """

    #: The node this link is connected to (URL without password), set by whoever connected.
    node: str = ""

    def __init__(
        self, params: pika.URLParameters, setup: Callable[[Any], None] | None = None
    ) -> None:
        self.connection = pika.BlockingConnection(params)
        try:
            rpc = self.connection.channel()
            if setup is not None:
                setup(rpc)
            self._rpc = impl_of(rpc)
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
            self._pub = impl_of(confirm)
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
            flush_output(self.connection)
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
        # A message without an id (a legacy notification) is known by its destination.
        message_id = properties.message_id or properties.correlation_id
        key = message_id or f"\0{method.exchange}\0{method.routing_key}"
        self._returns[key] = f"{method.reply_code} {method.reply_text}"

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
                    flush_output(self.connection)
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
                key = (
                    props.message_id
                    or props.correlation_id
                    or f"\0{message.exchange}\0{message.routing_key}"
                )
                out.append(self._returns.get(key))
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
            with quiet_pika():
                if self.connection.is_open:
                    self.connection.close()
        except Exception:
            log.debug("error closing a RabbitMQ connection", exc_info=True)
