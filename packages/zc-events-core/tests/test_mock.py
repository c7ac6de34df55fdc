from __future__ import annotations

import pytest

import zc_events
from zc_events import EnvelopeError, RequestTimeout, Response
from zc_events.testing import EventsMock, UnexpectedCall


def test_canned_response_and_recorded_call(zc_events_mock: EventsMock) -> None:
    zc_events_mock.add("GET", "add", data={"answer": 2})
    response = zc_events.get("add", data={"x": 1, "y": 1}, headers={"pk": "1"})
    assert (response.data, response.has_errors) == ({"answer": 2}, False)
    call = zc_events_mock.calls[0]
    assert (call.method, call.key, call.data, call.headers) == (
        "GET",
        "add",
        {"x": 1, "y": 1},
        {"pk": "1"},
    )
    zc_events_mock.assert_called("get", "add", times=1)


def test_errors_callbacks_exceptions_and_no_wait() -> None:
    with EventsMock() as mock:
        mock.add(
            "POST", "create", errors=[{"type": "ValidationError", "message": "bad"}], status=400
        )
        mock.add("PUT", "echo", callback=lambda request: {"got": request.data})
        mock.add("DELETE", "slow", exception=RequestTimeout("slow", "slow", 1.0))
        mock.add("POST", "notify")
        created = zc_events.post("create", data={})
        assert created.has_errors and created.status == 400 and created.data is None
        assert zc_events.put("echo", data=[1]).data == {"got": [1]}
        with pytest.raises(RequestTimeout):
            zc_events.delete("slow")
        assert isinstance(zc_events.post_no_wait("notify", data={"a": 1}), str)
        assert mock.calls_to("notify")[0].response is None


def test_match_data_and_times() -> None:
    with EventsMock() as mock:
        mock.add("GET", "add", {"answer": 2}, match_data={"x": 1, "y": 1}, times=1)
        assert zc_events.get("add", data={"x": 1, "y": 1}).data == {"answer": 2}
        with pytest.raises(UnexpectedCall, match="unexpected call GET 'add'"):
            zc_events.get("add", data={"x": 1, "y": 1})


def test_unexpected_call_names_what_is_registered() -> None:
    with EventsMock(assert_all_called=False) as mock:
        mock.add("GET", "known")
        with pytest.raises(UnexpectedCall, match="registered: GET 'known'"):
            zc_events.post("unknown")


def test_unfired_responses_fail_on_exit() -> None:
    with pytest.raises(AssertionError, match="never called: GET 'add'"), EventsMock() as mock:
        mock.add("GET", "add")


def test_mock_refuses_non_json_like_a_transport() -> None:
    with EventsMock(assert_all_called=False) as mock:
        mock.add("POST", "x")
        with pytest.raises(EnvelopeError):
            zc_events.post("x", data=object())


def test_mock_restores_the_previous_client() -> None:
    before = zc_events.default_client()
    with EventsMock(assert_all_called=False):
        assert zc_events.default_client() is not before
    assert zc_events.default_client() is before


def test_memory_fixture(zc_events_memory: zc_events.EventClient) -> None:
    @zc_events.handler("tests.mock.triple")
    def triple(request: zc_events.Request) -> Response:
        return Response(request.data * 3, status=200)

    try:
        assert zc_events.get("tests.mock.triple", data=2).data == 6
        assert zc_events_memory.backend.name == "memory"
    finally:
        zc_events.handlers.unregister("tests.mock.triple")
