"""Fault tests: real Redis, real worker subprocesses, only our own keys and connections touched."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from zc_events import Envelope, NoRouteError, PublishError
from zc_events.testing import fuzz_bodies

pytestmark = pytest.mark.redis

MODULES = ("redis_fault_handlers",)


def handled(log: Path) -> list[int]:
    if not log.exists():
        return []
    return [int(line) for line in log.read_text().split()]


def dead_letters(redis_client: Any, service: Any) -> list[dict[str, str]]:
    entries = redis_client.xrange(f"{service.prefix}:dead:{service.name}")
    return [{k.decode(): v.decode(errors="replace") for k, v in f.items()} for _, f in entries]


def stream(service: Any, key: str) -> str:
    return f"{service.prefix}:k:{key}"


def test_kill_9_with_3000_queued_loses_nothing(service: Any, tmp_path: Path, wait_for: Any) -> None:
    log = tmp_path / "handled.log"
    env = {"FAULT_LOG": str(log)}
    options = {"concurrency": 2, "prefetch": 50, "claim_idle": 2}
    first = service.start(MODULES, extra_env=env, **options)
    with service.client() as client:
        service.wait_ready(client, "fault.ping")
        with client.batch() as batch:
            for i in range(3000):
                batch.post_no_wait("fault.log", data={"i": i, "sleep": 0.002})
        wait_for(lambda: len(handled(log)) >= 300, what="the first worker to start")
        first.kill()  # SIGKILL: its unacknowledged entries stay pending on its consumers
        done_by_first = len(handled(log))
        assert done_by_first < 3000, "the first worker finished before it could be killed"
        second = service.start(MODULES, extra_env=env, **options)
        wait_for(lambda: set(handled(log)) >= set(range(3000)), 120, "all 3000 to be handled")
        assert client.get("fault.ping", data=1).data["pong"] == 1
    counts = Counter(handled(log))
    assert sorted(counts) == list(range(3000))
    twice = [i for i, n in counts.items() if n > 1]
    # Only an entry whose handler ran when the kill hit (one per thread) may run again.
    assert len(twice) <= options["concurrency"], twice
    assert all(n <= 2 for n in counts.values())
    assert "claimed" in second.output
    assert second.terminate() == 0


def test_sigterm_finishes_in_flight_and_leaves_the_rest_to_others(
    service: Any, tmp_path: Path, wait_for: Any
) -> None:
    log = tmp_path / "handled.log"
    env = {"FAULT_LOG": str(log)}
    # claim_idle is long: the second worker takes what the first left without waiting for it
    first = service.start(MODULES, extra_env=env, concurrency=1, prefetch=20, claim_idle=300)
    with service.client() as client:
        service.wait_ready(client, "fault.ping")
        with client.batch() as batch:
            for i in range(20):
                batch.post_no_wait("fault.log", data={"i": i, "sleep": 0.3})
        wait_for(lambda: len(handled(log)) >= 2, what="handling to start")
        assert first.terminate() == 0
        left = 20 - len(handled(log))
        assert left > 0, "the worker handled everything before SIGTERM"
        assert "pending for other consumers" in first.output
        second = service.start(MODULES, extra_env=env, concurrency=1, claim_idle=300)
        wait_for(lambda: len(handled(log)) >= 20, 60, "the rest to be handled by the second")
    assert sorted(handled(log)) == list(range(20))  # nothing twice, nothing lost
    assert "claimed" in second.output
    assert second.terminate() == 0


def test_reconnects_after_its_connections_are_killed(
    service: Any, tmp_path: Path, wait_for: Any, kill_connections: Any, redis_client: Any
) -> None:
    log = tmp_path / "handled.log"
    worker = service.start(MODULES, extra_env={"FAULT_LOG": str(log)}, concurrency=2)
    with service.client() as client:
        service.wait_ready(client, "fault.ping")
        workers = f"{service.client_name}-worker"

        def connected() -> int:
            return sum(str(c["name"]).startswith(workers) for c in redis_client.client_list())

        wait_for(lambda: connected() >= 2, 60, "both worker threads to connect")
        assert kill_connections(workers) >= 2
        # A lone get publishes on the reply reader's connection; a no-wait call on the pool's.
        client.post_no_wait("fault.ping", data=0)
        assert kill_connections(f"{service.client_name}-client") >= 2  # publisher and reader
        # the client retries on a fresh connection; the worker reconnects with backoff
        assert client.get("fault.ping", data=2, timeout=30).data["pong"] == 2
        for i in range(50):
            client.post_no_wait("fault.log", data={"i": i})
        wait_for(lambda: len(handled(log)) >= 50, 60, "50 messages after the reconnect")
    assert sorted(handled(log)) == list(range(50))
    assert "Redis connection failed" in worker.output
    assert "reconnecting in" in worker.output
    assert worker.poll() is None
    assert worker.terminate() == 0


def test_poison_messages_are_dead_lettered_with_the_reason(
    service: Any, redis_client: Any, wait_for: Any
) -> None:
    worker = service.start(MODULES, concurrency=1)  # one thread: dead letters in order
    victim = f"{service.prefix}-victim"
    with service.client() as client:
        service.wait_ready(client, "fault.ping")
        ping = stream(service, "fault.ping")
        wrong_key = Envelope.create("fault.log", data={"i": 1}).encode()
        hostile_reply = Envelope.create("fault.ping", data=1, reply_to=victim).encode()
        redis_client.xadd(ping, {"e": b"\x00not json"})
        redis_client.xadd(ping, {"other": b"field"})
        redis_client.xadd(ping, {"e": wrong_key})
        redis_client.xadd(ping, {"e": hostile_reply})
        client.post_no_wait("fault.fail", data={"n": 7})
        wait_for(lambda: len(dead_letters(redis_client, service)) == 5, 30, "five dead letters")
        assert client.get("fault.ping", data=3).data["pong"] == 3
    dead = dead_letters(redis_client, service)
    from_ping = [d for d in dead if d["stream"] == ping]  # in order: one thread, one stream
    reasons = [d["reason"] for d in from_ping]
    assert reasons[0].startswith("decoding failed: EnvelopeError: message is not valid JSON")
    assert "no 'e' field" in reasons[1]
    assert "is not the key of the stream" in reasons[2]
    assert "is not a reply list of this prefix" in reasons[3]
    fail = next(d for d in dead if d["stream"] == stream(service, "fault.fail"))
    assert fail["reason"] == (
        "the handler of no-wait POST 'fault.fail' failed (ValueError: failed on purpose: {'n': 7})"
    )
    assert fail["x-zc-events-error-type"] == "ValueError"
    assert json.loads(fail["body"])["data"] == {"n": 7}
    assert from_ping[0]["body"] == "\x00not json"
    assert redis_client.exists(victim) == 0  # a message cannot choose where the reply goes
    # the reply leaves just before the XACK: wait for the last ping to be acknowledged too
    wait_for(lambda: redis_client.xpending(ping, service.name)["pending"] == 0, 30, "the acks")
    assert "dead-lettering message" in worker.output
    assert worker.terminate() == 0


def test_a_message_delivered_too_often_is_dead_lettered(
    service: Any, redis_client: Any, tmp_path: Path, wait_for: Any
) -> None:
    log = tmp_path / "handled.log"
    key = stream(service, "fault.log")
    redis_client.xgroup_create(key, service.name, id="$", mkstream=True)
    entry = redis_client.xadd(key, {"e": Envelope.create("fault.log", data={"i": 9}).encode()})
    # a consumer that keeps dying: delivered once, then claimed again and again
    redis_client.xreadgroup(service.name, "ghost", {key: ">"}, count=1)
    for _ in range(3):
        redis_client.xclaim(key, service.name, "ghost", 0, [entry])
    worker = service.start(
        MODULES, extra_env={"FAULT_LOG": str(log)}, max_deliveries=3, claim_idle=0.2
    )
    wait_for(lambda: dead_letters(redis_client, service), 60, "the dead letter")
    [dead] = dead_letters(redis_client, service)
    assert dead["reason"] == (
        "delivered 4 time(s) without being acknowledged (the worker died while handling it); "
        "the limit is ZC_EVENTS_MAX_DELIVERIES=3"
    )
    assert dead["entry"] == entry.decode()
    assert handled(log) == []
    assert worker.terminate() == 0


def test_expired_requests_are_skipped(
    service: Any, redis_client: Any, tmp_path: Path, wait_for: Any
) -> None:
    log = tmp_path / "handled.log"
    worker = service.start(MODULES, extra_env={"FAULT_LOG": str(log)})
    with service.client() as client:
        service.wait_ready(client, "fault.ping")
        envelope = Envelope.create("fault.log", data={"i": 1}, timeout=0.01)
        envelope.reply_to = f"{service.prefix}:reply:{'0' * 32}"
        time.sleep(0.05)
        redis_client.xadd(stream(service, "fault.log"), {"e": envelope.encode()})
        client.post_no_wait("fault.log", data={"i": 2})
        wait_for(lambda: handled(log) == [2], 30, "the live message")
    assert (
        "skipping GET 'fault.log'" in worker.output or "skipping POST 'fault.log'" in worker.output
    )
    assert redis_client.exists(envelope.reply_to) == 0
    assert worker.terminate() == 0


def test_fuzzed_bodies_then_a_valid_call_is_answered(
    service: Any, redis_client: Any, wait_for: Any
) -> None:
    worker = service.start(MODULES, concurrency=2)
    bodies = fuzz_bodies(1000, seed=15)
    with service.client() as client:
        service.wait_ready(client, "fault.ping")
        pipe = redis_client.pipeline(transaction=False)
        for body in bodies:
            pipe.xadd(stream(service, "fault.ping"), {"e": body})
        pipe.execute()

        def drained() -> bool:
            info = redis_client.xinfo_groups(stream(service, "fault.ping"))[0]
            return bool(info["pending"] == 0 and info["lag"] == 0)

        wait_for(drained, 120, "every fuzzed body to be handled or dead-lettered")
        assert client.get("fault.ping", data=4).data["pong"] == 4
    assert worker.poll() is None
    dead = dead_letters(redis_client, service)
    assert len(dead) == 1000  # every one refused, with its reason, and kept
    assert all(d["reason"] for d in dead)
    keys = {k.decode().split(":")[1] for k in service.redis_keys()}
    assert keys <= {"k", "dead", "reply"}
    assert worker.terminate() == 0


def test_publish_refuses_to_trim_unread_messages(service: Any, redis_client: Any) -> None:
    key = stream(service, "fault.log")
    redis_client.xgroup_create(key, service.name, id="$", mkstream=True)
    with service.client(maxlen=100) as client:
        for i in range(100):
            client.post_no_wait("fault.log", data={"i": i})
        with pytest.raises(PublishError, match="is full") as info:
            client.post_no_wait("fault.log", data={"i": 100})
    assert service.name in str(info.value)
    assert "maxlen" in str(info.value)
    assert redis_client.xlen(key) == 100


def test_no_route_names_the_key(service: Any) -> None:
    with service.client() as client:
        started = time.monotonic()
        with pytest.raises(NoRouteError, match="nobody.here"):
            # published with the first read of the reply list: the refusal must end that read
            # at once, not after its 1 s
            client.get("nobody.here", timeout=30)
        assert time.monotonic() - started < 0.9
    assert service.redis_keys() == []  # the failed publish created nothing


def test_batch_names_the_keys_nobody_handles(service: Any, redis_client: Any) -> None:
    redis_client.xgroup_create(stream(service, "fault.log"), service.name, id="$", mkstream=True)
    with service.client() as client:
        batch = client.batch()
        batch.post_no_wait("fault.log", data={"i": 1})
        batch.post_no_wait("nobody.here", data={})
        batch.post_no_wait("fault.log", data={"i": 2})
        with pytest.raises(PublishError, match="1 of 3") as info:
            batch.flush()
    assert [e.key for e in info.value.failed] == ["nobody.here"]  # type: ignore[attr-defined]
    assert redis_client.xlen(stream(service, "fault.log")) == 2


def test_a_handler_slower_than_claim_idle_runs_once(
    service: Any, tmp_path: Path, wait_for: Any
) -> None:
    log = tmp_path / "handled.log"
    env = {"FAULT_LOG": str(log)}
    # Two workers that would claim each other's entries after 1.5 s of silence; the heartbeat
    # (every 0.5 s) must keep a 4 s handler's entry theirs. Not shorter: a loaded machine can
    # starve the heartbeat thread for a fraction of a second.
    service.start(MODULES, extra_env=env, concurrency=1, claim_idle=1.5)
    service.start(MODULES, extra_env=env, concurrency=1, claim_idle=1.5)
    with service.client() as client:
        service.wait_ready(client, "fault.ping")
        for i in range(2):
            client.post_no_wait("fault.log", data={"i": i, "sleep": 4})
        wait_for(lambda: len(handled(log)) >= 2, 60, "both slow messages")
        time.sleep(4)  # a second run, had it started, would have finished by now
    assert sorted(handled(log)) == [0, 1]
    assert all("claimed" not in w.output for w in service.workers)
