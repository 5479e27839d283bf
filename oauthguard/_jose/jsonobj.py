"""JSON text as ``json.loads`` reads it, without its Python layers in the common case, and
without lone surrogates (RFC 8259 §8.2)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from json.scanner import make_scanner
from typing import Any

# Every escape of a JSON string, whole: a \u with its code unit, or a backslash and one more.
_ESCAPE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|.)", re.DOTALL)

# The scanner json.loads runs underneath (its C one where there is one): it reads one value
# at an offset and says where the value ends.
_scan: Callable[[str, int], tuple[Any, int]] = make_scanner(json.JSONDecoder())  # type: ignore[arg-type]


def loads(text: str) -> Any:
    """``json.loads(text)``: the same value, the same errors.

    The scanner alone reads a text that is one value from its first character to its last;
    anything else (leading or trailing whitespace, a BOM, extra data, a malformed text) is
    handed to ``json.loads``, which answers it as it always does. A text with a lone
    surrogate escape is a ``ValueError``.
    """
    if "\\u" in text and has_lone_surrogate(text):
        raise ValueError("a lone surrogate: the text is no string of Unicode characters")
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        return json.loads(text)
    except ValueError:
        return json.loads(text)
    if end != len(text):
        return json.loads(text)
    return value


def has_lone_surrogate(text: str) -> bool:
    """RFC 8259 §8.2: a ``\\u`` escape of a surrogate that is not half of a pair, which
    parsers treat differently (``json`` keeps it, pydantic refuses it, and the string it
    makes cannot be encoded). ``text`` is strict UTF-8, so escapes are the only way to
    write one. Escapes are read left to right, each whole, so an escaped backslash never
    joins the escapes on either side of it into a pair."""
    if "\\u" not in text:
        return False
    high_ends = -1  # where an escaped high surrogate ends, until its low one follows
    for escape in _ESCAPE.finditer(text):
        unit = escape.group(1)
        code = -1 if unit is None else int(unit, 16)
        if high_ends >= 0:
            if escape.start() != high_ends or not 0xDC00 <= code <= 0xDFFF:
                return True
            high_ends = -1
        elif 0xD800 <= code <= 0xDBFF:
            high_ends = escape.end()
        elif 0xDC00 <= code <= 0xDFFF:
            return True
    return high_ends >= 0
