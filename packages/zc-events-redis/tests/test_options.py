"""Options and settings of the redis backend (no Redis needed: nothing connects until used)."""

from __future__ import annotations

from typing import Any

import pytest

from zc_events import ConfigurationError, Settings, create_backend
from zc_events_redis import DEFAULT_PREFIX, DEFAULT_URL, RedisBackend


def test_defaults() -> None:
    backend = RedisBackend(settings=Settings({"SERVICE_NAME": "calc"}))
    assert backend.url == DEFAULT_URL == "redis://127.0.0.1:6379/0"
    assert backend.options.prefix == DEFAULT_PREFIX == "zc-events"
    assert backend.queue == "calc"
    assert (backend.options.concurrency, backend.options.prefetch) == (4, 10)
    backend.close()


def test_url_from_the_setting_and_the_option() -> None:
    settings = Settings({"ZC_EVENTS_REDIS_URL": "redis://example.invalid:6380/2"})
    with RedisBackend(settings=settings) as backend:
        assert backend.url == "redis://example.invalid:6380/2"
    with RedisBackend(settings=settings, url="redis://other.invalid/1") as backend:
        assert backend.url == "redis://other.invalid/1"


def test_found_by_entry_point_with_backend_options() -> None:
    settings = Settings(
        {"ZC_EVENTS_BACKEND": "redis", "ZC_EVENTS_BACKEND_OPTIONS": {"prefix": "shop"}}
    )
    with create_backend(settings=settings) as backend:
        assert isinstance(backend, RedisBackend)
        assert backend.options.names.stream("add") == "shop:k:add"


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("url", "http://localhost", "'url' .*ZC_EVENTS_REDIS_URL.* redis://"),
        ("prefix", "", "'prefix' must be a non-empty printable string"),
        ("prefix", "has space", "'prefix'"),
        ("queue", 3, "'queue'"),
        ("concurrency", 0, "'concurrency' must be an int >= 1, got 0"),
        ("prefetch", 1.5, "'prefetch' must be an int >= 1"),
        ("maxlen", 10, "'maxlen' must be an int >= 100"),
        ("claim_idle", 0, "'claim_idle' must be a positive number of seconds"),
        ("block", "1", "'block'"),
        ("max_deliveries", True, "'max_deliveries'"),
        ("reply_ttl", -1, "'reply_ttl'"),
        ("client_name", "a b", "'client_name'"),
    ],
)
def test_bad_options_are_named(option: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        RedisBackend(settings=Settings(), **{option: value})


def test_unknown_option_is_named() -> None:
    with pytest.raises(ConfigurationError, match="unknown option.*exchange"):
        RedisBackend(settings=Settings(), exchange="x")


def test_password_is_masked_in_errors() -> None:
    with pytest.raises(ConfigurationError) as info:
        RedisBackend(settings=Settings(), url="http://user:s3cret@host/0")
    assert "s3cret" not in str(info.value)


def test_reply_names() -> None:
    with RedisBackend(settings=Settings(), prefix="p.x") as backend:
        names = backend.options.names
        assert names.is_reply("p.x:reply:" + "0a" * 16)
        for bad in [
            "p.x:reply:" + "0A" * 16,
            "pqx:reply:" + "0a" * 16,
            "p.x:k:add",
            None,
            3,
            "p.x:reply:" + "0a" * 16 + "\n",
            "other:reply:" + "0a" * 16,
        ]:
            assert not names.is_reply(bad), bad
