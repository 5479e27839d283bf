"""``loads``: the value and the error ``json.loads`` gives, for every kind of text, and no
lone surrogate."""

from __future__ import annotations

import json

import pytest

from oauthguard._jose.jsonobj import loads

TEXTS = [
    '{"a": 1, "b": [1, 2.5, "x"], "c": {"d": null}}',
    "[]",
    '"text"',
    "12",
    ' {"a": 1}',
    '{"a": 1} ',
    '\n{"a": 1}\t',
    '{"a": 1, "a": 2}',
    '{"a": NaN}',
    '{"a": "\\ud83d\\ude00"}',  # a surrogate pair: one character
    '{"a": "\\\\ud800"}',  # an escaped backslash, then the letters ud800
    '{"a": "\\u00e9\\uD7FF\\uE000"}',
]
BAD = [
    "",
    " ",
    "\ufeff{}",
    '{"a": 1}x',
    '{"a": 1} {"b": 2}',
    '{"a": 1',
    "{'a': 1}",
    '{"a": 1,}',
    "nul",
]


@pytest.mark.parametrize("text", TEXTS)
def test_loads_reads_what_json_loads_reads(text: str) -> None:
    assert repr(loads(text)) == repr(json.loads(text))


@pytest.mark.parametrize("text", BAD)
def test_loads_refuses_what_json_loads_refuses_with_its_error(text: str) -> None:
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(text)
    with pytest.raises(json.JSONDecodeError) as refused:
        loads(text)
    assert str(refused.value) == str(expected.value)


def test_loads_of_deep_nesting_is_a_recursion_error_as_for_json_loads() -> None:
    with pytest.raises(RecursionError):
        loads("[" * 100_000)


@pytest.mark.parametrize(
    "text",
    [
        '{"a": "\\ud800"}',
        '{"a": "\\uDFFF"}',
        '{"a": "x\\udc00y"}',
        '{"a": "\\ud83d"}',  # a high surrogate with no low one after it
        '{"a": "\\ude00\\ud83d"}',  # the two halves in the wrong order
        '{"\\ud800": 1}',
        '{"a": "\\\\\\ud800"}',  # an escaped backslash, then a lone surrogate
        '{"a": "\\ud83d\\\\\\ude00"}',  # high, an escaped backslash, low: no pair
        '{"a": "\\ud83dx\\ude00"}',
    ],
)
def test_a_lone_surrogate_is_a_value_error(text: str) -> None:
    """RFC 8259 §8.2: no string of Unicode characters (json.loads would keep it)."""
    json.loads(text)
    with pytest.raises(ValueError, match="lone surrogate"):
        loads(text)
