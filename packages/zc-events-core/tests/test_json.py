from __future__ import annotations

import json

import pytest

from zc_events import _json

VALUE = {"text": "zażółć / 東京 🚀", "n": [1, 2.5, None, True], "nested": {"k": {}}}


@pytest.mark.parametrize("dumps", [_json.dumps, _json._stdlib_dumps], ids=["picked", "stdlib"])
def test_encoders_agree_with_the_standard_library(dumps: object) -> None:
    encoded = dumps(VALUE)  # type: ignore[operator]
    assert isinstance(encoded, bytes)
    assert json.loads(encoded) == VALUE
    assert _json.loads(encoded) == VALUE


@pytest.mark.parametrize("dumps", [_json.dumps, _json._stdlib_dumps], ids=["picked", "stdlib"])
def test_encoders_raise_type_error_for_non_json(dumps: object) -> None:
    with pytest.raises(TypeError):
        dumps({"x": object()})  # type: ignore[operator]
    with pytest.raises(TypeError):
        dumps({1, 2})  # type: ignore[operator]
