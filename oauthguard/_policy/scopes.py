"""Scopes in requirements: their syntax (RFC 6749 §3.3), the guard's scope hierarchy
(``scope_implies``), and the check that a token was granted them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from oauthguard._wire.errors import ConfigurationError
from oauthguard._wire.tokens import is_scope_token, split_scope

NO_IMPLICATIONS: Mapping[str, frozenset[str]] = MappingProxyType({})


def scope_list(name: str, value: str | Iterable[str] | None) -> tuple[str, ...]:
    """A space-separated string or an iterable of scope tokens, in order, without repeats."""
    if value is None:
        return ()
    if isinstance(value, str):
        items: list[Any] = split_scope(value)  # RFC 6749 §3.3: on SP only
    else:
        try:
            items = list(value)
        except TypeError:
            raise ConfigurationError(
                f"{name} must be a string or an iterable of strings, got {type(value).__name__}"
            ) from None
    for item in items:
        if not is_scope_token(item):
            raise ConfigurationError(
                f"{name}: {item!r} is not a valid value (RFC 6749 §3.3: printable ASCII "
                "without space, '\"' or '\\')"
            )
    return tuple(dict.fromkeys(items))


def granted_scopes(scopes: frozenset[str], implies: Mapping[str, frozenset[str]]) -> frozenset[str]:
    """The token's scopes plus every scope they imply (the guard's ``scope_implies``)."""
    if not implies:
        return scopes
    granted = set(scopes)
    for scope in scopes:
        granted.update(implies.get(scope, ()))
    return frozenset(granted)


def scopes_granted(granted: frozenset[str], every: frozenset[str], some: frozenset[str]) -> bool:
    """``granted`` holds every scope of ``every`` and, when ``some`` names any, one of them."""
    return every <= granted and (not some or not granted.isdisjoint(some))


def build_implications(value: Mapping[str, Iterable[str]] | None) -> dict[str, frozenset[str]]:
    """``scope_implies``: each scope with every scope it implies, followed transitively."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigurationError('scope_implies must be a dict like {"admin": {"read", "write"}}')
    direct: dict[str, tuple[str, ...]] = {}
    for key, implied in value.items():
        names = scope_list("scope_implies", key) if isinstance(key, str) else ()
        if len(names) != 1:
            raise ConfigurationError(f"scope_implies: the key {key!r} is not one scope")
        direct[names[0]] = scope_list(f"scope_implies[{key!r}]", implied)
    closure: dict[str, frozenset[str]] = {}
    for scope in direct:
        seen: set[str] = set()
        pending = list(direct[scope])
        while pending:
            implied = pending.pop()
            if implied not in seen:
                seen.add(implied)
                pending.extend(direct.get(implied, ()))
        closure[scope] = frozenset(seen - {scope})
    return closure
