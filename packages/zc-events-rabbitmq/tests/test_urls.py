"""Several broker URLs (``;``-separated or a list): clients and workers use the first node that
answers, errors name every node, and no password is shown."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from zc_events import PublishError, Settings
from zc_events_rabbitmq import RabbitMQBackend
from zc_events_rabbitmq._amqp import describe_url

LIVE = "amqp://guest:guest@127.0.0.1:5672/%2F"


def closed_url(password: str = "guest") -> str:
    """The URL of a local port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    return f"amqp://guest:{password}@127.0.0.1:{port}/%2F"


def test_describe_url_masks_every_password() -> None:
    text = describe_url("amqp://a:s3cret1@h1:5681/;amqp://b:s3cret2@h2:5682/")
    assert "s3cret" not in text
    assert "h1:5681" in text and "h2:5682" in text


def test_a_list_of_urls_is_joined_with_semicolons() -> None:
    settings = Settings({"BROKER_URL": ["amqp://h1/", " amqp://h2/ "]})
    assert settings.broker_url({}) == "amqp://h1/;amqp://h2/"
    backend = RabbitMQBackend(settings=Settings({}), url=["amqp://h1:1/", "amqp://h2:2/"])
    assert backend.nodes.urls == ["amqp://h1:1/", "amqp://h2:2/"]


@pytest.mark.rabbitmq
def test_client_skips_a_dead_node_and_says_which_node_it_is_on(service: Any) -> None:
    service.start()
    url = f"{closed_url()};{LIVE}"
    with service.client(url=url) as client:
        service.wait_ready(client)
        assert client.get("conformance.add", data={"x": 1, "y": 2}, timeout=10).data == {
            "answer": 3
        }
        assert client.backend.node == describe_url(LIVE)
        client.post_no_wait("conformance.add", data={"x": 1, "y": 2})


@pytest.mark.rabbitmq
def test_no_node_answering_is_one_publish_error_naming_each_node_without_password() -> None:
    first, second = closed_url("pw-one-x"), closed_url("pw-two-x")
    backend = RabbitMQBackend(settings=Settings({}), url=[first, second])
    with pytest.raises(PublishError) as info:
        backend._connect()
    message = str(info.value)
    assert "no node answered" in message, message
    assert first.split("@")[1] in message and second.split("@")[1] in message, message
    assert "pw-one-x" not in message and "pw-two-x" not in message, message
    assert message.count("connection refused") == 2, message


@pytest.mark.rabbitmq
def test_worker_skips_a_dead_node_and_logs_the_node_it_consumes_at(service: Any) -> None:
    worker = service.start(url=f"{closed_url()};{LIVE}", concurrency=2)
    with service.client() as client:
        service.wait_ready(client)
        assert client.get("conformance.add", data={"x": 2, "y": 2}, timeout=10).data == {
            "answer": 4
        }
    consuming = [line for line in worker.lines if "consuming" in line]
    assert consuming and describe_url(LIVE) in consuming[0], worker.output
    assert "guest:guest" not in worker.output
