"""Scopes and roles read from the claims an issuer puts them in, by name or by dotted path."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from oauthguard._wire.errors import InvalidToken
from oauthguard._wire.tokens import MalformedScope, parse_scope

#: A claim to read: the names leading to it from the top of the claims, one per level.
ClaimPath = tuple[str, ...]


def claim_path(name: str) -> ClaimPath:
    """Where ``name`` points: a dotted name is a path into nested objects
    (``realm_access.roles``); a name holding ``://`` (an Auth0 namespaced claim such as
    ``https://example.com/roles`` is a URL) or no dot at all is one claim's name.
    ``ValueError`` for a path with an empty segment (``a..b``, ``.a``, ``a.``)."""
    if "://" in name or "." not in name:
        return (name,)
    segments = tuple(name.split("."))
    if not all(segments):
        raise ValueError(f"{name!r} has an empty segment")
    return segments


def claim_at(claims: Mapping[str, Any], path: ClaimPath) -> Any:
    """The value at ``path``, or None when a member on the way is absent. Anything else
    than an object on the way is malformed: the claim cannot be read with certainty."""
    value: Any = claims
    for depth, segment in enumerate(path):
        if type(value) is not dict and not isinstance(value, Mapping):  # dict: no ABC check
            raise InvalidToken(f"the token's {'.'.join(path[:depth])} claim is not an object")
        value = value.get(segment)
        if value is None:
            return None
    return value


def read_scopes(claims: Mapping[str, Any], paths: Sequence[ClaimPath]) -> frozenset[str]:
    """The scopes of every claim at ``paths``, united: each a space-separated string or an
    array of strings.

    RFC 6749 §3.3: split on SP only, and every item a scope-token; a token whose scopes
    cannot be read with certainty is refused, never read as fewer or other scopes.
    """
    found: frozenset[str] = frozenset()
    for path in paths:
        value = claim_at(claims, path)
        if value is None:
            continue
        if not isinstance(value, str | list):
            raise InvalidToken(
                f"the {'.'.join(path)} claim is neither a string nor an array of strings"
            )
        try:
            found = found | parse_scope(value)
        except MalformedScope:
            raise InvalidToken(f"the token's {'.'.join(path)} claim is malformed") from None
    return found


def is_role(value: object) -> bool:
    """A role as issuers name them: a non-empty printable string. Unlike a scope-token it
    may hold spaces (Keycloak role names do); it is only ever matched whole."""
    return isinstance(value, str) and value != "" and value.isprintable()


def read_roles(claims: Mapping[str, Any], paths: Sequence[ClaimPath]) -> frozenset[str]:
    """The roles of every claim at ``paths``, united: an array of role names, or a string
    of them separated by SP (as a scope string, RFC 6749 §3.3). A value that cannot be
    read with certainty is refused, never read as fewer roles."""
    found: set[str] = set()
    for path in paths:
        value = claim_at(claims, path)
        if value is None:
            continue
        if isinstance(value, str):
            try:
                found.update(parse_scope(value))
            except MalformedScope:
                raise InvalidToken(f"the token's {'.'.join(path)} claim is malformed") from None
        elif isinstance(value, list) and all(is_role(item) for item in value):
            found.update(value)
        else:
            raise InvalidToken(
                f"the token's {'.'.join(path)} claim is neither a string nor an array of roles"
            )
    return frozenset(found)
