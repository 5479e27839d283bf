"""JSON text as ``json.loads`` reads it, without its Python layers in the common case."""

from __future__ import annotations

import json
from collections.abc import Callable
from json.scanner import make_scanner
from typing import Any

# The scanner json.loads runs underneath (its C one where there is one): it reads one value
# at an offset and says where the value ends.
_scan: Callable[[str, int], tuple[Any, int]] = make_scanner(json.JSONDecoder())  # type: ignore[arg-type]


def loads(text: str) -> Any:
    """``json.loads(text)``: the same value, the same errors.

    The scanner alone reads a text that is one value from its first character to its last;
    anything else (leading or trailing whitespace, a BOM, extra data, a malformed text) is
    handed to ``json.loads``, which answers it as it always does.
    """
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        return json.loads(text)
    except ValueError:
        return json.loads(text)
    if end != len(text):
        return json.loads(text)
    return value
