"""Path-prefix tables: path rules and the resource each path belongs to."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Generic, TypeVar

from oauthguard.errors import ConfigurationError

V = TypeVar("V")


def normalize_prefix(prefix: object, what: str = "rules") -> str:
    """``/api/r/`` -> ``/api/r``; the root ``/`` -> ``""`` (a prefix of every path)."""
    if not isinstance(prefix, str) or not prefix.startswith("/"):
        raise ConfigurationError(f"{what}: the path {prefix!r} must be a string starting with '/'")
    if any(char in prefix for char in "*?#"):
        raise ConfigurationError(
            f"{what}: the path {prefix!r} is a plain prefix, matched by whole segments; "
            "it takes no wildcards, query or fragment")
    return prefix.rstrip("/")


class PathTable(Generic[V]):
    """Values by path prefix, matched by whole segments (``/api/r`` covers ``/api/r/x``,
    never ``/api/rx``). The longest prefix wins; for the same prefix an entry for the
    request's method beats one for any method (``None``), and HEAD falls back to GET.

    Matching costs one dict lookup per distinct prefix length, whatever the path.
    """

    def __init__(self, entries: Iterable[tuple[str | None, str, V]] = (),
                 what: str = "rules") -> None:
        self._entries: dict[tuple[str | None, str], V] = {}
        for method, prefix, value in entries:
            key = (method.upper() if method else None, normalize_prefix(prefix, what))
            if key in self._entries:
                shown = f"{key[0]} {key[1] or '/'}" if key[0] else (key[1] or "/")
                raise ConfigurationError(f"{what}: {shown} is given twice")
            self._entries[key] = value
        self._lengths = sorted({len(prefix) for _, prefix in self._entries}, reverse=True)

    def __bool__(self) -> bool:
        return bool(self._entries)

    def items(self) -> list[tuple[tuple[str | None, str], V]]:
        return list(self._entries.items())

    def match(self, method: str | None, path: str) -> V | None:
        """The value for ``method`` and ``path``, or None when no prefix covers the path."""
        entries, size = self._entries, len(path)
        for length in self._lengths:
            if length > size or (length < size and path[length] != "/"):
                continue
            prefix = path[:length]
            if method is not None:
                value = entries.get((method, prefix))
                if value is None and method == "HEAD":
                    value = entries.get(("GET", prefix))
                if value is not None:
                    return value
            value = entries.get((None, prefix))
            if value is not None:
                return value
        return None


def routed_path(path: str, root_path: str) -> str:
    """The path the app routes. Behind a ``root_path`` (``uvicorn --root-path``) the server
    puts it in ``path`` and Starlette routes without it."""
    rest = path[len(root_path):]
    if path.startswith(root_path) and rest[:1] in ("/", ""):
        return rest or "/"
    return path
