"""A JSON column's value reads as Python's own decoder reads it (`db.json_value`)."""

from __future__ import annotations

import math

from backend.db import json_value


def test_a_json_column_reads_as_json_loads_reads_it() -> None:
    text = '{"name": "测试", "fields": [1, 2.5, null, true], "nested": {"x": "\\u5b66"}}'
    expected = {"name": "测试", "fields": [1, 2.5, None, True], "nested": {"x": "学"}}
    assert json_value(text) == expected
    assert json_value(text.encode()) == json_value(text)
    assert json_value({"already": "decoded"}) == {"already": "decoded"}
    assert json_value(None) is None


def test_what_msgspec_refuses_is_still_read() -> None:
    nan, big = json_value("[NaN, 1e400]")
    assert math.isnan(nan)
    assert big == math.inf
