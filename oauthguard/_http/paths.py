"""Request paths in normal form, and path-prefix tables: path rules and the resource each
path belongs to."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Generic, TypeVar
from urllib.parse import unquote, unquote_to_bytes

from oauthguard._wire.errors import ConfigurationError

V = TypeVar("V")


NOT_NORMAL = "the path is not in normal form: it has "


def path_problem(path: str, raw_path: object = None, root_path: str | None = "") -> str | None:
    """What keeps ``path`` (and the ``raw_path`` it was decoded from) out of normal form, or
    None when it is in it.

    In normal form every reader of the request sees the same path: a router that matches it
    as it is, ``StaticFiles`` and proxies that resolve dot segments, file systems that read
    ``\\`` or drop a trailing ``.``; so what the guard matches is what the app serves.
    RFC 3986 §6.2.2: percent-encoding decoded once (§6.2.2.2; never ``%2F``, which would make
    a new segment), no dot segments (§6.2.2.3), no empty segments; nothing a server or file
    system may read as a separator, terminator or parameter. Linear in the path's length.
    """
    if (
        not path.isprintable()
        or path[:1] != "/"
        or "//" in path
        or "./" in path
        or " /" in path
        or "\\" in path
        or "%" in path
        or ";" in path
        or path[-1] in ". "
    ):
        return NOT_NORMAL + _describe(path)
    if raw_path is not None and raw_path != path.encode():
        problem = _raw_path_problem(path, raw_path, root_path)
        return None if problem is None else NOT_NORMAL + problem
    if "#" in path and isinstance(raw_path, bytes) and b"#" in raw_path.partition(b"?")[0]:
        # RFC 9112 §3.2: never in a request's target (a fragment), where a reader of the
        # URI (a proof's htu) would drop what follows it; %23 is a '#' in a segment.
        return NOT_NORMAL + "a '#' as sent (a fragment, never part of a request's path)"
    return None


class NormalPaths(dict[str, tuple[object, str | None]]):
    """Paths found in normal form, each with the ``raw_path`` and ``root_path`` it came with:
    ``paths.get(path) == (raw_path, root_path)`` means ``path_problem`` said None for these
    three values, so a path seen before costs one dict lookup. The answer depends on the
    three values alone, so an entry never goes stale; the table is bounded in entries
    (emptied when full) and in the length of the paths it keeps."""

    __slots__ = ("max_entries",)

    #: Longer paths are checked every time: they would cost the table memory.
    MAX_PATH_LENGTH = 256

    def __init__(self, max_entries: int = 1024) -> None:
        super().__init__()
        self.max_entries = max_entries

    def problem(self, path: str, raw_path: object, root_path: str | None) -> str | None:
        """``path_problem(path, raw_path, root_path)``, remembered when None. Only exact
        ``bytes`` (or no) raw paths are kept, so an entry matches only values that compare
        equal to what was checked."""
        problem = path_problem(path, raw_path, root_path)
        if (
            problem is None
            and (raw_path is None or type(raw_path) is bytes)
            and len(path) <= self.MAX_PATH_LENGTH
        ):
            if len(self) >= self.max_entries:
                self.clear()
            self[path] = (raw_path, root_path)
        return problem


def method_problem(method: object) -> str | None:
    """RFC 9110 §9.1: methods are case-sensitive, yet some apps upper-case them; where rules
    name methods, one not in upper case cannot be matched with certainty."""
    if isinstance(method, str) and method != method.upper():
        return "the method is not in upper case, as rules name methods"
    return None


def _describe(path: str) -> str:
    """Which rule of :func:`path_problem` ``path`` breaks, in words."""
    if not path.isprintable():
        return "a control or other non-printable character"
    if path[:1] != "/":
        return "no leading '/'"
    if "\\" in path:
        return "a backslash (a separator on some servers and file systems)"
    if "%" in path:
        return "a '%' left after percent-decoding (encoded twice, or not a valid escape)"
    if ";" in path:
        return "a ';' (path parameters, which some servers strip)"
    segments = path.split("/")[1:]
    if "." in segments or ".." in segments:
        return "a dot segment ('.' or '..', RFC 3986 §3.3), which the app may resolve"
    if "" in segments[:-1]:
        return "an empty segment ('//')"
    return "a segment ending in '.' or ' ' (which some file systems drop)"


def _raw_path_problem(path: str, raw_path: object, root_path: str | None) -> str | None:
    """The checks of the path as sent (``raw_path``), where it is not ``path`` byte for byte."""
    if not isinstance(raw_path, bytes):
        return "a raw_path that is not bytes"
    sent = raw_path.partition(b"?")[0]  # servers that leave the query in raw_path
    if b"%2f" in sent.lower():
        return "an encoded '/' (%2F), which the app may decode"
    try:
        decoded = unquote_to_bytes(sent).decode()
    except UnicodeDecodeError:
        return "percent-encoding that is not UTF-8"
    # Servers that leave the root_path out of raw_path (but not out of path) send the rest.
    if decoded == path or (root_path and root_path + decoded == path):
        return None
    return "a raw_path that does not decode to its path"


def configured_path(path: str, what: str, prefix: bool = False) -> str:
    """A configured path in the form requests are matched on: percent-decoded (but never
    ``%2F``), in normal form; anything else could never match a request. A ``prefix`` (of
    ``public_paths``) may end in the middle of a segment."""
    problem = None
    if "%2f" in path.lower():
        problem = NOT_NORMAL + "an encoded '/' (%2F)"
    elif "%" in path:
        try:
            path = unquote(path, errors="strict")
        except UnicodeDecodeError:
            problem = NOT_NORMAL + "percent-encoding that is not UTF-8"
    problem = problem or path_problem(path + "x" if prefix else path)
    if problem is not None:
        raise ConfigurationError(f"{what}: {problem}, so {path!r} would never match a request")
    return path


def normalize_prefix(prefix: object, what: str = "rules") -> str:
    """``/api/r/`` -> ``/api/r``; the root ``/`` -> ``""`` (a prefix of every path)."""
    if not isinstance(prefix, str) or not prefix.startswith("/"):
        raise ConfigurationError(f"{what}: the path {prefix!r} must be a string starting with '/'")
    if any(char in prefix for char in "*?#"):
        raise ConfigurationError(
            f"{what}: the path {prefix!r} is a plain prefix, matched by whole segments; "
            "it takes no wildcards, query or fragment"
        )
    return configured_path(prefix, what).rstrip("/")


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
        #: Some entry is for one method (matched on the method as the request names it).
        self.by_method = any(key is not None for m in self._by_prefix.values() for key in m)

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
    """``public_paths``: exact paths, or prefixes marked by one trailing ``*``; decoded, in
    normal form."""
    paths = (value,) if isinstance(value, str) else tuple(value)
    for path in paths:
        if not isinstance(path, str) or not path.startswith("/") or "*" in path[:-1]:
            raise ConfigurationError(
                f"public_paths: {path!r} must start with '/' and may only end with '*'"
            )
    return tuple(
        configured_path(path[:-1], "public_paths", prefix=True) + "*"
        if path.endswith("*")
        else configured_path(path, "public_paths")
        for path in paths
    )
