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
            "it takes no wildcards, query or fragment"
        )
    return prefix.rstrip("/")


class PathTable(Generic[V]):
    """Values by path prefix, matched by whole segments (``/api/r`` covers ``/api/r/x``,
    never ``/api/rx``). The longest prefix wins; for the same prefix an entry for the
    request's method beats one for any method (``None``), and HEAD falls back to GET.

    Matching costs one dict lookup per distinct prefix length, whatever the path.
    """

    def __init__(
        self, entries: Iterable[tuple[str | None, str, V]] = (), what: str = "rules"
    ) -> None:
        # prefix -> method (None: any method) -> value
        self._by_prefix: dict[str, dict[str | None, V]] = {}
        for method, prefix, value in entries:
            key, path = method.upper() if method else None, normalize_prefix(prefix, what)
            methods = self._by_prefix.setdefault(path, {})
            if key in methods:
                raise ConfigurationError(
                    f"{what}: {f'{key} ' if key else ''}{path or '/'} is given twice"
                )
            methods[key] = value
        self._lengths = sorted({len(prefix) for prefix in self._by_prefix}, reverse=True)

    def __bool__(self) -> bool:
        return bool(self._by_prefix)

    def items(self) -> list[tuple[tuple[str | None, str], V]]:
        return [
            ((method, prefix), value)
            for prefix, methods in self._by_prefix.items()
            for method, value in methods.items()
        ]

    def match(self, method: str | None, path: str) -> V | None:
        """The value for ``method`` and ``path``, or None when no prefix covers the path."""
        by_prefix, size = self._by_prefix, len(path)
        for length in self._lengths:
            if length > size or (length < size and path[length] != "/"):
                continue
            methods = by_prefix.get(path[:length])
            if methods is None:
                continue
            value = methods.get(method) if method is not None else None
            if value is None and method == "HEAD":
                value = methods.get("GET")
            if value is None:
                value = methods.get(None)
            if value is not None:
                return value
        return None


def routed_path(path: str, root_path: str) -> str:
    """The path the app routes. Behind a ``root_path`` (``uvicorn --root-path``) the server
    puts it in ``path`` and Starlette routes without it."""
    rest = path[len(root_path) :]
    if path.startswith(root_path) and rest[:1] in ("/", ""):
        return rest or "/"
    return path


def check_public_paths(value: Iterable[str]) -> tuple[str, ...]:
    """``public_paths``: exact paths, or prefixes marked by one trailing ``*``."""
    paths = (value,) if isinstance(value, str) else tuple(value)
    for path in paths:
        if not isinstance(path, str) or not path.startswith("/") or "*" in path[:-1]:
            raise ConfigurationError(
                f"public_paths: {path!r} must start with '/' and may only end with '*'"
            )
    return paths
