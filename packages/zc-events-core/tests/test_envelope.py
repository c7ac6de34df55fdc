from __future__ import annotations

import json
import re
import uuid

import pytest

from zc_events import Envelope, EnvelopeError, RemoteError, Response


def wire(**changes: object) -> bytes:
    obj = Envelope.create("add", "GET", {"x": 1}).to_dict()
    obj.update(changes)
    return json.dumps(obj).encode()


def test_round_trip_keeps_every_field() -> None:
    env = Envelope.create("add", "patch", {"x": "é"}, {"pk": "1"}, timeout=5, priority=7)
    back = Envelope.decode(env.encode())
    assert back == env
    assert back.method == "PATCH" and back.priority == 7
    assert 4 < back.time_left() <= 5  # type: ignore[operator]


def test_ids_are_uuid4() -> None:
    ids = {Envelope.create("k").id for _ in range(1000)}
    assert len(ids) == 1000
    for value in list(ids)[:50]:
        assert uuid.UUID(value).version == 4
        assert re.fullmatch(
            r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", value
        )


@pytest.mark.parametrize(
    ("raw", "field", "message"),
    [
        (b"not json", None, "not valid JSON"),
        (b"[1, 2]", None, "must be a JSON object"),
        (wire(v=2), "v", "unsupported envelope version"),
        (wire(key=""), "key", "must not be empty"),
        (wire(key=5), "key", "must be a string"),
        (wire(key="a" * 256), "key", "at most 255"),
        (wire(key="new\nline"), "key", "non-printable"),
        (wire(method="FETCH"), "method", "method"),
        (wire(method=["GET"]), "method", "method"),
        (wire(method={"a": 1}), "method", "method"),
        (wire(key=["a"]), "key", "must be a string"),
        (wire(key={"a": 1}), "key", "must be a string"),
        (wire(headers=[]), "headers", "headers"),
        (wire(reply_to=3), "reply_to", "reply_to"),
        (wire(deadline="soon"), "deadline", "deadline"),
        (wire(priority=10), "priority", "priority"),
        (wire(priority=True), "priority", "priority"),
        (wire(sent_at=None), "sent_at", "sent_at"),
        (wire(id=""), "id", "id"),
        (wire(surprise=1), "surprise", "unknown field"),
    ],
)
def test_decode_names_the_bad_field(raw: bytes, field: str | None, message: str) -> None:
    with pytest.raises(EnvelopeError, match=message) as info:
        Envelope.decode(raw)
    assert info.value.field == field
    assert isinstance(info.value, ValueError)


def test_missing_field_is_named() -> None:
    obj = Envelope.create("add").to_dict()
    del obj["method"]
    with pytest.raises(EnvelopeError, match="'method'") as info:
        Envelope.from_dict(obj)
    assert info.value.field == "method"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"method": "BREW"}, "method"),
        ({"headers": "pk=1"}, "headers"),
        ({"priority": 11}, "priority"),
        ({"timeout": 0}, "deadline"),
        ({"timeout": "30"}, "deadline"),
    ],
)
def test_create_validates_arguments(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(EnvelopeError) as info:
        Envelope.create("add", **kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


def test_encode_names_non_json_data() -> None:
    with pytest.raises(EnvelopeError, match="cannot be encoded as JSON") as info:
        Envelope.create("add", data={"when": object()}).encode()
    assert info.value.field == "data"


def test_response_wire_form_and_errors() -> None:
    ok = Response({"a": 1}, status=200)
    assert json.loads(ok.encode()) == {
        "data": {"a": 1},
        "has_errors": False,
        "errors": [],
        "status": 200,
    }
    assert Response.decode(ok.encode()) == ok
    try:
        {}["y"]
    except KeyError as exc:
        failed = Response.from_exception(exc)
        traced = Response.from_exception(exc, trace=True)
    assert failed.has_errors and failed.data is None
    assert failed.errors[0]["type"] == "KeyError" and failed.errors[0]["message"] == "'y'"
    assert "trace" not in failed.errors[0]  # no traceback unless asked for
    assert "Traceback" in traced.errors[0]["trace"]
    with pytest.raises(RemoteError, match="KeyError: 'y'") as info:
        failed.raise_for_errors()
    assert info.value.response is failed
    assert ok.raise_for_errors() is ok


@pytest.mark.parametrize(
    ("errors", "status", "message"),
    [
        ([{"type": "KeyError", "message": "'y'", "trace": "..."}], None, "KeyError: 'y'"),
        # error objects a DRF service rendered, passed on unchanged (no type, no message)
        ([{"detail": "Not found."}], 404, "HTTP 404: Not found."),
        (
            [{"detail": 'Method "PUT" not allowed.', "status": "405", "source": {}}],
            405,
            'HTTP 405: Method "PUT" not allowed.',
        ),
        (
            [{"detail": "Invalid.", "code": "invalid"}, {"detail": "Also."}],
            400,
            "invalid: Invalid. (and 1 more)",
        ),
        ([{"item": ["This field is required."]}], 400, 'HTTP 400: {"item": ["This field'),
        ([{"title": "Gone", "detail": {"why": 1}}], 410, 'Gone: {"why": 1}'),
        ([{}], None, "Error: "),
    ],
)
def test_remote_error_reads_any_error_object(
    errors: list[dict[str, object]], status: int | None, message: str
) -> None:
    with pytest.raises(RemoteError) as info:
        Response(None, True, errors, status).raise_for_errors()
    assert str(info.value).startswith(message)
    assert info.value.errors == errors


@pytest.mark.parametrize(
    "raw",
    [
        b"[]",
        b'{"errors": "x"}',
        b'{"errors": [1]}',
        b'{"has_errors": "no"}',
        b'{"status": "200"}',
        b"{",
    ],
)
def test_response_decode_rejects_malformed(raw: bytes) -> None:
    with pytest.raises(EnvelopeError):
        Response.decode(raw)
