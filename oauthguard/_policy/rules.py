"""Path rules: ``OAuthGuard(rules={"/admin": require("admin")})`` read into a path table."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from oauthguard._http.paths import PathTable
from oauthguard._policy.requirement import Requirement
from oauthguard._wire.errors import ConfigurationError

_METHOD = re.compile(r"[A-Z]+")


def build_rules(rules: Mapping[Any, Any] | None) -> PathTable[Requirement]:
    """``{"/admin": require("admin"), ("POST", "/orders"): require("orders:write")}``."""
    if rules is None:
        return PathTable()
    if not isinstance(rules, Mapping):
        raise ConfigurationError("rules must be a dict of path (or (method, path)) to require(...)")
    entries: list[tuple[str | None, str, Requirement]] = []
    for key, requirement in rules.items():
        method, path = key if isinstance(key, tuple) and len(key) == 2 else (None, key)
        if method is not None and (
            not isinstance(method, str) or not _METHOD.fullmatch(method.upper())
        ):
            raise ConfigurationError(f"rules: {method!r} in {key!r} is not an HTTP method")
        if not isinstance(requirement, Requirement):
            raise ConfigurationError(
                f"rules: the value for {key!r} must be require(...), got {requirement!r}"
            )
        entries.append((method, path, requirement))
    return PathTable(entries, "rules")
