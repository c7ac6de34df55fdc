"""What the two RabbitMQ backends share: options, the connection pool, confirmed publishing."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pika
import pika.exceptions

from zc_events import (
    Backend,
    ConfigurationError,
    DeadLetter,
    Envelope,
    NoRouteError,
    PublishError,
    Settings,
    batch_error,
)

from ._amqp import (
    CONNECTION_ERRORS,
    Link,
    LinkLost,
    Nodes,
    Outgoing,
    describe_connection_error,
    describe_url,
    is_refused,
    quiet_pika,
)

__all__ = ["RabbitMQBase", "positive_int"]

log = logging.getLogger("zc_events.rabbitmq")

#: A pooled connection idle for longer than this is checked before use (a cheap poll), so one
#: the broker closed meanwhile is replaced instead of failing the call.
PROBE_AFTER_IDLE = 0.5


def positive_int(backend: str, name: str, value: Any) -> int:
    """``value`` if it is an int >= 1, else ConfigurationError naming the option."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(
            f"{backend} backend option {name!r} must be an int >= 1, got {value!r}"
        )
    return value


def positive_float(backend: str, name: str, value: Any) -> float:
    """``value`` as a float if it is a positive number, else ConfigurationError."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigurationError(
            f"{backend} backend option {name!r} must be a positive number, got {value!r}"
        )
    return float(value)


class RabbitMQBase(Backend):
    """Connection pooling and confirmed publishing for the RabbitMQ backends.

    Each calling thread borrows a :class:`~zc_events_rabbitmq._amqp.Link` (a connection with its
    channels) from a pool for the length of one call, so the hot path does no connect, declare
    or consumer set-up, and no connection is ever used by two threads at once. A link that
    fails is dropped and the next call connects afresh.
    """

    def __init__(
        self,
        *,
        settings: Settings | None = None,
        url: str | None = None,
        redis_url: str | None = None,
        connection_name: str | None = None,
        confirm_timeout: float | None = None,
        prefetch: int = 10,
        concurrency: int = 4,
        **options: Any,
    ) -> None:
        super().__init__(settings=settings, **options)
        name = self.name
        self.url = self.settings.broker_url({"url": url})
        self._redis_url_option = redis_url
        self.prefetch = positive_int(name, "prefetch", prefetch)
        self.concurrency = positive_int(name, "concurrency", concurrency)
        self._confirm_timeout = (
            None
            if confirm_timeout is None
            else positive_float(name, "confirm_timeout", confirm_timeout)
        )
        service = self.settings.get("SERVICE_NAME", None)
        self.connection_name = connection_name or (
            f"zc-events {service or 'client'} pid {os.getpid()}"
        )
        #: The nodes of ``url`` (several separated by ``;``) and which one to try first.
        self.nodes = Nodes(self.url, self.connection_name)
        self._params = self.nodes.params
        #: The node (URL, password masked) the newest client connection went to; "" before any.
        self.node = ""
        self._idle: list[Link] = []
        self._pid = os.getpid()
        self._closed = False
        #: The running worker (set by :meth:`serve`), for :meth:`is_consuming`.
        self.worker: Any = None

    # -- settings ---------------------------------------------------------------------------
    @property
    def redis_url(self) -> str:
        """Redis URL for legacy replies: option ``redis_url``, ``EVENTS_REDIS_URL``, default."""
        return self.settings.redis_url({"redis_url": self._redis_url_option})

    @property
    def confirm_timeout(self) -> float:
        """Seconds to wait for publisher confirms (default: ``ZC_EVENTS_TIMEOUT``)."""
        return self._confirm_timeout or self.settings.timeout

    # -- operations -----------------------------------------------------------------------
    def is_consuming(self) -> bool:
        """True while some consumer thread of the running worker is connected and consuming."""
        worker = self.worker
        return worker is not None and not self.stopping.is_set() and worker.is_consuming()

    def dead_letters(self, service: str | None = None) -> list[DeadLetter]:
        """The messages in ``<service>.dead`` (default ``SERVICE_NAME``), oldest first."""
        from ._dead import list_dead_letters

        return list_dead_letters(self, service)

    def replay_dead_letters(
        self,
        service: str | None = None,
        ids: Iterable[str] | None = None,
        *,
        prepare: Callable[[Envelope], Envelope] | None = None,
    ) -> list[str]:
        """Publish dead letters of ``service`` again (native: to their key on the exchange;
        legacy: to the queue they came from), each removed once the broker confirmed it."""
        from ._dead import replay_dead_letters

        return replay_dead_letters(self, service, ids, prepare)

    # -- the pool -----------------------------------------------------------------------------
    def setup_channel(self, channel: Any) -> None:
        """Declare what a fresh client connection needs (once per connection)."""

    def _connect(self) -> Link:
        """A new link. ConfigurationError when the broker refuses the login, the vhost or a
        permission (retrying cannot help); PublishError when it cannot be reached."""
        if self._closed:
            raise PublishError(f"the {self.name} backend is closed")
        try:
            with quiet_pika():
                link, node = self.nodes.connect(lambda params: Link(params, self.setup_channel))
        except pika.exceptions.ChannelClosedByBroker as exc:
            raise ConfigurationError(
                f"RabbitMQ at {describe_url(self.url)} refused the {self.name} client set-up: "
                f"{describe_connection_error(exc)}"
            ) from exc
        except CONNECTION_ERRORS as exc:
            error = ConfigurationError if is_refused(exc) else PublishError
            raise error(
                f"cannot connect to RabbitMQ at {describe_url(self.url)}: "
                f"{describe_connection_error(exc)}"
            ) from exc
        link.node = self.node = node
        return link

    def _lost(self, link: Link) -> None:
        """Discard ``link``, whose connection failed; the next connect tries another node."""
        self.nodes.lost(link.node)
        link.close()

    def _checkout(self) -> Link:
        if os.getpid() != self._pid:  # forked (gunicorn --preload...): the sockets are the parent's
            self._idle, self._pid = [], os.getpid()
        try:
            link = self._idle.pop()
        except IndexError:
            link = None
        if link is None:  # connect outside the except block: no chained IndexError in errors
            return self._connect()
        if time.monotonic() - link.last_used > PROBE_AFTER_IDLE:
            with quiet_pika():
                usable = link.probe()
            if not usable:
                log.info(
                    "replacing a RabbitMQ connection to %s that was closed while idle", link.node
                )
                self._lost(link)
                return self._connect()
        return link

    def _checkin(self, link: Link) -> None:
        if self._closed or not link.usable:
            link.close()
        else:
            self._idle.append(link)

    def close(self) -> None:
        """Close the pooled connections. Calls made afterwards raise PublishError."""
        self._closed = True
        while self._idle:
            try:
                link = self._idle.pop()
            except IndexError:
                break
            link.close()

    # -- publishing ----------------------------------------------------------------------------
    def call_link(self, use: Callable[[Link], Any], *, checkin: bool = True) -> Any:
        """Run ``use(link)`` on a pooled link; retry once on a fresh link if the first one
        failed before anything was sent. Raises PublishError if the connection fails.

        With ``checkin=False`` the caller keeps the link and must hand it back with
        :meth:`_checkin`.
        """
        for attempt in (1, 2):
            link = self._checkout()
            try:
                with quiet_pika():
                    result = use(link)
            except LinkLost as exc:
                self._lost(link)
                if not exc.sent and attempt == 1:
                    continue
                raise PublishError(f"connection to RabbitMQ at {link.node} lost: {exc}") from exc
            except BaseException:
                link.close()
                raise
            if checkin:
                self._checkin(link)
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    def publish_confirmed(
        self, envelopes: Sequence[Envelope], messages: Sequence[Outgoing]
    ) -> None:
        """Publish ``messages`` (one per envelope) with confirms, pipelined, waiting once.

        Messages still unconfirmed when a connection fails are published again on a fresh one
        (at least once). Raises NoRouteError when the only message was unroutable, else
        PublishError naming every message the broker did not take.
        """
        outcomes: dict[int, str | None] = {}
        pending = list(range(len(messages)))
        last_error: BaseException | None = None
        for _attempt in (1, 2):
            if not pending:
                break
            try:
                link = self._checkout()
            except PublishError as exc:
                last_error = exc
                break
            batch = [messages[i] for i in pending]
            try:
                with quiet_pika():
                    results = link.publish_confirmed(batch, self.confirm_timeout)
            except LinkLost as exc:
                self._lost(link)
                log.warning(
                    "connection to RabbitMQ at %s lost while publishing (%s); publishing %d "
                    "unconfirmed message(s) again",
                    link.node,
                    exc,
                    len(batch) - len(exc.confirmed),
                )
                for j, outcome in exc.confirmed.items():
                    outcomes[pending[j]] = outcome
                pending = [i for j, i in enumerate(pending) if j not in exc.confirmed]
                last_error = exc
                continue
            except TimeoutError as exc:
                link.close()
                last_error = exc
                break
            except BaseException:
                link.close()
                raise
            self._checkin(link)
            for j, outcome in enumerate(results):
                outcomes[pending[j]] = outcome
            pending = []
        failed: list[tuple[Envelope, BaseException]] = []
        for i, envelope in enumerate(envelopes):
            if i in outcomes:
                reason = outcomes[i]
                if reason is None:
                    continue
                if "NO_ROUTE" in reason:
                    error: BaseException = NoRouteError(
                        f"no service handles key {envelope.key!r} (the broker returned the "
                        f"message: {reason})",
                        envelope.key,
                    )
                else:
                    error = PublishError(f"RabbitMQ did not take the message: {reason}")
            else:
                error = PublishError(f"not confirmed by RabbitMQ: {last_error}")
            failed.append((envelope, error))
        if not failed:
            return
        if len(envelopes) == 1:
            raise failed[0][1]
        raise batch_error(failed, len(envelopes))
