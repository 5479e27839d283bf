"""Roles, clients and claims in requirements: needs that no scope a client could request
meets.

``roles``: the token has every one of these roles (``AccessToken.roles``). ``clients``: the
token's client (``AccessToken.client_id``) is one of these. ``claims``: each named claim
holds each given value, compared by JSON type and value. A description of a miss names what
is missing, each value bounded and escaped; the only value it shows of the token is its
client id.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from oauthguard._wire.errors import ConfigurationError
from oauthguard._wire.tokens import AccessToken

#: What ``claims=`` values may be: JSON strings, numbers and booleans.
Scalar = str | int | float | bool

_MISSING: Final = object()
_NUMBERS: Final = frozenset((int, float))  # JSON's one number type; bool is not one
_SHOWN_CHARS: Final = 48  # of one value in a description
_NAMED: Final = 5  # values listed in a description before "and N more"
# RFC 7493 §2.2: the integers every JSON implementation holds exactly.
_LARGEST_INT: Final = 2**53 - 1


def shown(value: object) -> str:
    """``value`` as a description shows it: a string quoted, cut after 48 characters, with
    every character outside printable ASCII escaped (a CR or LF from a token never reaches a
    header as one); a number or boolean as JSON writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if not isinstance(value, str):
        return repr(value)  # a number of the configuration, within ±2**53: short
    text = ascii(value[:_SHOWN_CHARS])
    return text[:-1] + "..." + text[-1] if len(value) > _SHOWN_CHARS else text


def named(values: Iterable[object]) -> str:
    """Up to five values, shown, then how many more."""
    items = list(values)
    listed = ", ".join(shown(value) for value in items[:_NAMED])
    return listed + (f" and {len(items) - _NAMED} more" if len(items) > _NAMED else "")


def name_list(argument: str, value: str | Iterable[str] | None, what: str) -> tuple[str, ...]:
    """``roles`` / ``clients``: a string is one name, an iterable several; in order, once each.

    A bare string holds no space (``"admin clerk"`` is two roles to the eye, one to the
    check): several names, or a name with a space, are given as a list.
    """
    if value is None:
        return ()
    if isinstance(value, (bytes, bytearray, Mapping)) or not isinstance(value, (str, Iterable)):
        raise ConfigurationError(
            f"{argument} must be a string or a list of strings, got {type(value).__name__}"
        )
    if isinstance(value, str) and " " in value:
        raise ConfigurationError(
            f"{argument}={value!r} holds a space: give several {what}s as a list "
            f"({argument}={value.split()!r}), and a {what} whose name has a space in a list too"
        )
    items: list[Any] = [value] if isinstance(value, str) else list(value)
    for item in items:
        if not isinstance(item, str) or not item or not item.isprintable() or item != item.strip():
            raise ConfigurationError(
                f"{argument}: {item!r} is not a {what} (a non-empty string without control "
                f"characters or surrounding spaces), as in {argument}=['a', 'b']"
            )
    return tuple(dict.fromkeys(items))


def claim_path(name: object) -> tuple[str, ...]:
    """A ``claims=`` key: a top-level claim, or a dotted path into nested objects
    (``realm_access.roles``); a name holding ``://`` (an Auth0 namespaced claim) is literal."""
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"claims: the key {name!r} is not a claim name (a string)")
    if "://" in name:
        return (name,)
    path = tuple(name.split("."))
    if "" in path:
        raise ConfigurationError(
            f"claims: {name!r} has an empty segment; a dotted name is a path into nested "
            "objects, like 'realm_access.roles'"
        )
    return path


def claim_values(name: str, value: object) -> tuple[Scalar, ...]:
    """A ``claims=`` value: one JSON string, number or boolean, or a list of them (the claim
    must hold every one)."""
    items = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
    if not items:
        raise ConfigurationError(
            f"claims[{name!r}] is empty: give the value (or list of values) the claim must hold"
        )
    return tuple(_scalar(name, item) for item in items)


def _scalar(name: str, item: object) -> Scalar:
    """``item`` as the plain type a JSON parser gives (an enum member becomes its value)."""
    problem = _scalar_problem(item)
    if problem is not None or not isinstance(item, (str, int, float)):
        raise ConfigurationError(f"claims[{name!r}]: {item!r} {problem}")
    if isinstance(item, bool):
        return bool(item)
    if isinstance(item, str):
        return str.__str__(item)
    return int(item) if isinstance(item, int) else float(item)


def _scalar_problem(item: object) -> str | None:
    """Why ``item`` cannot be a value a claim is required to hold, or None."""
    if isinstance(item, bool):
        return None
    if isinstance(item, str):
        return None if item else "is empty; give the value the claim must hold"
    if isinstance(item, int):
        if -_LARGEST_INT <= item <= _LARGEST_INT:
            return None
        return "is beyond the integers JSON numbers hold exactly (RFC 7493 §2.2: ±2**53)"
    if isinstance(item, float):
        return None if math.isfinite(item) else "is not a JSON number (RFC 8259 §6)"
    if isinstance(item, Mapping):
        return (
            "is an object: a claim is compared with strings, numbers and booleans; name a "
            "member of a nested object with a dotted path ('realm_access.roles')"
        )
    if item is None:
        return "is null, which a token cannot be required to hold (an absent claim is null too)"
    return "is not a string, number or boolean (a list of them means 'holds every one')"


def _same(actual: object, expected: Scalar) -> bool:
    """JSON equality: by type and value (``true`` is not ``1``, ``"1"`` is not ``1``); one
    number type, as in JSON (RFC 8259 §6), so ``2`` is ``2.0``. ``expected`` is a plain
    ``str``, ``int``, ``float`` or ``bool`` (``claim_values``), as JSON parsers give them."""
    kind = type(actual)
    if kind is type(expected):
        return actual == expected
    return kind in _NUMBERS and type(expected) in _NUMBERS and actual == expected


def holds(found: object, expected: Scalar) -> bool:
    """A claim holds a value when it equals it, or, as an array, has an item that does.
    Nested arrays and objects never equal a value."""
    kind = type(found)
    if kind is list or kind is tuple:
        # A loop, not any(): no generator per item checked on every request.
        for item in found:  # type: ignore[attr-defined]  # noqa: SIM110
            if _same(item, expected):
                return True
        return False
    return _same(found, expected)


def claim_at(claims: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """The claim at ``path`` (through nested JSON objects), or ``_MISSING``."""
    found: Any = claims
    for segment in path:
        # dict first: what JSON gives, and much cheaper to recognize than any Mapping.
        if not isinstance(found, (dict, Mapping)) or segment not in found:
            return _MISSING
        found = found[segment]
    return found


@dataclass(frozen=True, slots=True, eq=False)  # eq=False: True == 1 must not merge two needs
class ClaimNeed:
    """One ``claims=`` entry: the claim ``name`` (at ``path``) holds every one of ``values``."""

    name: str
    path: tuple[str, ...]
    values: tuple[Scalar, ...]

    def met(self, claims: Mapping[str, Any]) -> bool:
        """Whether ``claims`` meet this need."""
        found = claim_at(claims, self.path)
        if found is _MISSING:
            return False
        for value in self.values:  # noqa: SIM110 (a loop: no generator per request)
            if not holds(found, value):
                return False
        return True

    def miss(self, claims: Mapping[str, Any]) -> str | None:
        """What the token lacks of this need, or None."""
        found = claim_at(claims, self.path)
        if found is _MISSING:
            return f"the token has no claim {shown(self.name)}"
        lacking = [value for value in self.values if not holds(found, value)]
        if not lacking:
            return None
        return f"the token's claim {shown(self.name)} does not hold {named(lacking)}"


@dataclass(frozen=True, slots=True)
class Privileges:
    """The roles, client sets and claims a requirement needs; the token's client must be in
    every one of ``client_sets`` (one per requirement that names clients)."""

    roles: tuple[str, ...] = ()
    client_sets: tuple[tuple[str, ...], ...] = ()
    claims: tuple[ClaimNeed, ...] = ()
    #: The actors that may act for the subject (RFC 8693 §4.1), one set per requirement.
    actor_sets: tuple[tuple[str, ...], ...] = ()
    role_set: frozenset[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "role_set", frozenset(self.roles))

    def met(self, token: AccessToken) -> bool:
        """Whether ``token`` meets every need: the common case, without describing any."""
        if self.role_set:
            granted = token.roles
            # Anything but a set is left to misses(), which refuses it.
            if not isinstance(granted, frozenset) or not self.role_set <= granted:
                return False
        client = token.client_id
        for clients in self.client_sets:
            if client not in clients:
                return False
        if self.actor_sets and not _actor_allowed(token, self.actor_sets):
            return False
        claims = token.claims
        for need in self.claims:  # noqa: SIM110 (a loop: no generator per request)
            if not need.met(claims):
                return False
        return True

    def misses(self, token: AccessToken) -> list[str]:
        """A description of each need the token does not meet; empty when it meets them all."""
        misses = []
        if self.roles:
            granted = token.roles
            if not isinstance(granted, (frozenset, set)):  # a verifier's bug: fail closed
                raise TypeError(f"AccessToken.roles must be a frozenset, not {type(granted)}")
            lacking = [role for role in self.roles if role not in granted]
            if lacking:
                plural = "s" if len(lacking) > 1 else ""
                misses.append(f"the token lacks the role{plural} {named(lacking)}")
        for clients in self.client_sets:
            if token.client_id not in clients:
                misses.append(_client_miss(token.client_id, clients))
                break
        if self.actor_sets and not _actor_allowed(token, self.actor_sets):
            misses.append(_actor_miss(token, self.actor_sets))
        for need in self.claims:
            miss = need.miss(token.claims)
            if miss is not None:
                misses.append(miss)
        return misses

    @staticmethod
    def merged(parts: Iterable[Privileges | None]) -> Privileges | None:
        """What meeting every one of ``parts`` takes (a batch of MCP tool calls)."""
        present = [part for part in parts if part is not None]
        if not present:
            return None
        return Privileges(
            tuple(dict.fromkeys(role for part in present for role in part.roles)),
            tuple(dict.fromkeys(clients for part in present for clients in part.client_sets)),
            tuple(dict.fromkeys(need for part in present for need in part.claims)),
            tuple(dict.fromkeys(actors for part in present for actors in part.actor_sets)),
        )


def _actor_allowed(token: AccessToken, actor_sets: tuple[tuple[str, ...], ...]) -> bool:
    """RFC 8693 §4.1: only the current (outermost) actor counts; a token nobody acts in
    (no ``act``) is its subject acting for itself, which ``actors=`` does not restrict."""
    actor = token.actor
    if actor is None:
        return True
    return _foreign_issuer(token) is None and all(actor.subject in actors for actors in actor_sets)


def _foreign_issuer(token: AccessToken) -> str | None:
    """The actor's ``iss`` when it names another issuer than the token's: its ``sub`` is a
    name in that issuer's namespace (RFC 8693 §4.1), not the one ``actors=`` names."""
    issuer = token.actor.issuer if token.actor is not None else None
    return issuer if issuer is not None and issuer != token.issuer else None


def _actor_miss(token: AccessToken, actor_sets: tuple[tuple[str, ...], ...]) -> str:
    subject = token.actor.subject if token.actor is not None else None
    allowed = [actor for actors in actor_sets for actor in actors]
    if not allowed:
        return "the token is delegated (act), and this operation is for its subject alone"
    who = "an actor without sub" if subject is None else f"the actor {shown(subject)}"
    foreign = _foreign_issuer(token)
    if foreign is not None:
        who += f" of another issuer, {shown(foreign)}"
    return f"the token is delegated to {who}, not one of {named(allowed)}"


def _client_miss(client: object, allowed: tuple[str, ...]) -> str:
    if not isinstance(client, str):
        return (
            "the token names no client (client_id, azp, cid or appid); this operation is for "
            f"{named(allowed)}"
        )
    return f"the token's client {shown(client)} is not one of {named(allowed)}"


def build_privileges(
    roles: str | Iterable[str] | None,
    clients: str | Iterable[str] | None,
    claims: Mapping[str, Any] | None,
    actors: str | Iterable[str] | None = None,
) -> Privileges | None:
    """``require(roles=, clients=, claims=, actors=)``, validated; None when none is given.
    ``actors=()`` is a need too: no actor at all may act for the subject."""
    role_names = name_list("roles", roles, "role")
    client_ids = name_list("clients", clients, "client id")
    actor_ids = None if actors is None else name_list("actors", actors, "actor")
    if claims is not None and not isinstance(claims, Mapping):
        raise ConfigurationError(
            "claims must be a dict of claim name to the value it must hold, like "
            f"{{'tenant': 'acme'}}, got {type(claims).__name__}"
        )
    needs = tuple(
        ClaimNeed(name, claim_path(name), claim_values(name, value))
        for name, value in (claims or {}).items()
    )
    if not (role_names or client_ids or needs or actor_ids is not None):
        return None
    return Privileges(
        role_names,
        (client_ids,) if client_ids else (),
        needs,
        (actor_ids,) if actor_ids is not None else (),
    )
