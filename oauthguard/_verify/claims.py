"""Scopes and roles read from the claims an issuer puts them in, by name or by dotted path."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from oauthguard._wire.errors import InvalidToken
from oauthguard._wire.tokens import Actor, MalformedScope, parse_scope

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
    value: Any = claims.get(path[0])
    for depth in range(1, len(path)):
        if value is None:
            return None
        # dict first, what JSON gives (a tuple: a union type would be built on every call)
        if not isinstance(value, (dict, Mapping)):
            raise InvalidToken(f"the token's {'.'.join(path[:depth])} claim is not an object")
        value = value.get(path[depth])
    return value


def read_scopes(claims: Mapping[str, Any], paths: Sequence[ClaimPath]) -> frozenset[str]:
    """The scopes of every claim at ``paths``, united: each a space-separated string or an
    array of strings.

    RFC 6749 §3.3: split on SP only, and every item a scope-token; a token whose scopes
    cannot be read with certainty is refused, never read as fewer or other scopes.
    """
    found: frozenset[str] | None = None
    for path in paths:
        # one name (the common case) is one lookup
        value = claims.get(path[0]) if len(path) == 1 else claim_at(claims, path)
        if value is None:
            continue
        if not isinstance(value, (str, list)):
            raise InvalidToken(
                f"the {'.'.join(path)} claim is neither a string nor an array of strings"
            )
        try:
            scopes = parse_scope(value)
        except MalformedScope:
            raise InvalidToken(f"the token's {'.'.join(path)} claim is malformed") from None
        found = scopes if found is None else found | scopes
    return frozenset() if found is None else found


def role_names(value: list[Any]) -> list[str] | None:
    """``value`` when it is an array of roles as issuers name them, non-empty printable
    strings (unlike a scope-token a role may hold spaces, as Keycloak's do; it is only ever
    matched whole), else None. Checked in C: ``join`` refuses any item not a string."""
    try:
        joined = "".join(value)
    except TypeError:
        return None
    if not joined.isprintable() or "" in value:
        return None
    return value


def read_roles(claims: Mapping[str, Any], paths: Sequence[ClaimPath]) -> frozenset[str]:
    """The roles of every claim at ``paths``, united: an array of role names, or a string
    of them separated by SP (as a scope string, RFC 6749 §3.3). A value that cannot be
    read with certainty is refused, never read as fewer roles."""
    found: frozenset[str] = frozenset()
    for path in paths:
        value = claim_at(claims, path)
        if value is None:
            continue
        if isinstance(value, str):
            try:
                found = found.union(parse_scope(value))
            except MalformedScope:
                raise InvalidToken(f"the token's {'.'.join(path)} claim is malformed") from None
            continue
        roles = role_names(value) if isinstance(value, list) else None
        if roles is None:
            raise InvalidToken(
                f"the token's {'.'.join(path)} claim is neither a string nor an array of roles"
            )
        found = found.union(roles)
    return found


#: The deepest chain of actors read (RFC 8693 §4.1 nests one ``act`` per earlier actor).
MAX_ACTOR_DEPTH = 16


_NO_ACTOR = object()


def read_actor(value: object) -> Actor | None:
    """The ``act`` claim (RFC 8693 §4.1): a JSON object naming the current actor, with the
    earlier actors nested in its own ``act``. A value that is no such object, or a chain
    deeper than ``MAX_ACTOR_DEPTH``, cannot be read with certainty: the token is refused
    rather than read as not delegated."""
    links: list[Mapping[str, Any]] = []
    while value is not _NO_ACTOR:  # a present null is no object either
        if not isinstance(value, dict):
            raise InvalidToken("the token's act claim is not a JSON object")  # RFC 8693 §4.1
        if len(links) == MAX_ACTOR_DEPTH:
            raise InvalidToken(f"the token's act claim nests more than {MAX_ACTOR_DEPTH} actors")
        links.append(value)
        value = value.get("act", _NO_ACTOR)
    actor: Actor | None = None
    for link in reversed(links):  # the earliest actor first, each later one wraps it
        names = [link.get(name) for name in ("sub", "iss", "client_id")]
        if not all(name is None or isinstance(name, str) for name in names):
            raise InvalidToken("the token's act claim has a sub, iss or client_id not a string")
        sub, iss, client = names
        actor = Actor(sub, iss, client, link, actor)
    return actor
