"""Checks of configuration values shared by the settings groups (each names its argument)."""

from __future__ import annotations

import math
from typing import Any

from oauthguard._wire.errors import ConfigurationError


def seconds(name: str, value: object, *, positive: bool = False, finite: bool = False) -> float:
    """A number of seconds (not a bool, not NaN), non-negative or ``positive``, and not
    infinite where ``finite``; ``name`` is the argument as the user wrote it."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or value < 0
        or (positive and value == 0)
        or value != value  # NaN
        or (finite and not math.isfinite(value))
    ):
        kind = "a positive" if positive else "a non-negative"
        raise ConfigurationError(f"{name} must be {kind} number of seconds, got {value!r}")
    return float(value)


def settings_group(name: str, value: Any, kind: type[Any]) -> Any:
    """``value`` if it is a ``kind`` (a settings group), ``kind()`` for None; otherwise a
    ``ConfigurationError`` naming the argument and the group it takes."""
    if value is None:
        return kind()
    if not isinstance(value, kind):
        raise ConfigurationError(
            f"{name} must be oauthguard.{kind.__name__}(...), got {type(value).__name__}"
        )
    return value
