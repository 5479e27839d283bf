"""The validated access token handed to the application as ``request.auth``, and the
RFC 6749 §3.3 syntax its scopes are read with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Protocol, runtime_checkable


class MalformedScope(ValueError):
    """A scope that is not made of RFC 6749 §3.3 scope-tokens; ``item`` is the first bad one."""

    def __init__(self, item: object) -> None:
        super().__init__(f"{str(item)[:60]!r} is not an RFC 6749 §3.3 scope-token")
        self.item = item


def is_scope_string(value: str) -> bool:
    """RFC 6749 §3.3: ``scope = scope-token *( SP scope-token )`` and ``scope-token =
    1*( %x21 / %x23-5B / %x5D-7E )``, so a scope holds only printable ASCII (0x20-0x7E) but
    '"' and '\\'; checked with four scans in C rather than a regular expression."""
    return value.isascii() and value.isprintable() and '"' not in value and "\\" not in value


def is_scope_token(value: object) -> bool:
    """Whether ``value`` is one RFC 6749 §3.3 scope-token."""
    return isinstance(value, str) and value != "" and is_scope_string(value) and " " not in value


def split_scope(value: str) -> list[str]:
    """The items of a scope string, split on SP (0x20) only, as RFC 6749 §3.3 delimits them;
    the empty items repeated, leading or trailing SP make are dropped. No other character
    (TAB, NBSP, U+2028, ...) separates: ``str.split()`` would find scopes the issuer never
    granted in one scope-token."""
    return [item for item in value.split(" ") if item]


def parse_scope(value: str | list[Any]) -> frozenset[str]:
    """The scopes of a scope string (RFC 6749 §3.3) or of an array of scope-tokens (as some
    issuers write ``scp``); ``MalformedScope`` when any item is not a scope-token."""
    if isinstance(value, str):
        if not is_scope_string(value):
            raise MalformedScope(next(i for i in split_scope(value) if not is_scope_token(i)))
        return frozenset(value.split())  # SP is the only whitespace left: split_scope, in C
    if not value:
        return frozenset()
    try:
        # In C: join refuses any item not a string; the joined string is scope characters
        # only, and splits back into the very items (none empty, none holding SP).
        joined = " ".join(value)
        if is_scope_string(joined) and joined.split(" ") == value and "" not in value:
            return frozenset(value)
    except TypeError:
        pass
    raise MalformedScope(next(item for item in value if not is_scope_token(item)))


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts on behalf of a token's subject: the ``act`` claim (RFC 8693 §4.1).

    ``subject``, ``issuer`` and ``client_id`` are its ``sub``, ``iss`` and ``client_id``;
    ``claims`` every member of the ``act`` object. ``previous`` is the actor before this one
    (a nested ``act``): the chain, for the record only; RFC 8693 §4.1 makes the outermost
    actor the current one, the only one an access decision considers.
    """

    subject: str | None
    issuer: str | None = None
    client_id: str | None = None
    claims: Mapping[str, Any] = field(default_factory=dict, repr=False)
    previous: Actor | None = None

    @property
    def chain(self) -> tuple[Actor, ...]:
        """This actor, then each earlier one, the most recent first."""
        actors: list[Actor] = []
        actor: Actor | None = self
        while actor is not None:
            actors.append(actor)
            actor = actor.previous
        return tuple(actors)


@dataclass(frozen=True, slots=True, init=False)
class AccessToken:
    """A validated access token, whatever its source (JWT or introspection).

    ``scopes`` is what Starlette's ``@requires`` reads; ``roles`` are the roles the issuer
    granted; ``claims`` holds every claim of the JWT or every member of the introspection
    response (built with ``claims=None``: none). ``actor`` is who acts for the subject in a
    delegated token (RFC 8693 §4.1 ``act``), None otherwise. ``raw`` is the token string as
    the client sent it (never in its repr): what ``oauthguard.exchange.TokenExchange``
    exchanges for a downstream API.
    """

    subject: str | None
    client_id: str | None
    scopes: frozenset[str]
    audience: tuple[str, ...]
    issuer: str | None
    expires_at: float | None
    claims: Mapping[str, Any] = field(default_factory=dict, repr=False)
    scheme: str = "Bearer"
    #: RFC 7638 thumbprint of the key the token is bound to (``cnf.jkt``), if any.
    jkt: str | None = None
    #: The roles the issuer granted (read from its ``Issuer(roles_claims=...)``).
    roles: frozenset[str] = frozenset()
    #: The current actor of a delegated token (RFC 8693 §4.1 ``act``), if any.
    actor: Actor | None = None
    #: The token as it was sent: never logged, never in the repr.
    raw: str = field(default="", repr=False, compare=False)

    def __init__(
        self,
        subject: str | None,
        client_id: str | None,
        scopes: frozenset[str],
        audience: tuple[str, ...],
        issuer: str | None,
        expires_at: float | None,
        claims: Mapping[str, Any] | None = None,
        scheme: str = "Bearer",
        jkt: str | None = None,
        roles: frozenset[str] = frozenset(),
        actor: Actor | None = None,
        raw: str = "",
    ) -> None:
        # What the generated __init__ does, at half the cost (one is built for every fresh
        # token): it would look up object.__setattr__ for each field, these are bound once.
        (
            set_subject,
            set_client_id,
            set_scopes,
            set_audience,
            set_issuer,
            set_expires_at,
            set_claims,
            set_scheme,
            set_jkt,
            set_roles,
            set_actor,
            set_raw,
        ) = _SET_FIELDS
        set_subject(self, subject)
        set_client_id(self, client_id)
        set_scopes(self, scopes)
        set_audience(self, audience)
        set_issuer(self, issuer)
        set_expires_at(self, expires_at)
        set_claims(self, {} if claims is None else claims)
        set_scheme(self, scheme)
        set_jkt(self, jkt)
        set_roles(self, roles)
        set_actor(self, actor)
        set_raw(self, raw)

    def has_scopes(self, *scopes: str) -> bool:
        """True when the token carries every one of ``scopes``."""
        return all(scope in self.scopes for scope in scopes)


# The slots' own setters (member descriptors), in field order; frozen forbids setattr.
_SET_FIELDS = tuple(getattr(AccessToken, field_.name).__set__ for field_ in fields(AccessToken))


class AuthenticatedUser:
    """A Starlette-compatible user built from the token (``request.user``)."""

    __slots__ = ("token",)

    def __init__(self, token: AccessToken) -> None:
        self.token = token

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.token.subject or self.token.client_id or ""

    @property
    def identity(self) -> str:
        return self.token.subject or self.token.client_id or ""

    def __repr__(self) -> str:
        return f"AuthenticatedUser({self.display_name!r})"


class AnonymousUser:
    """``request.user`` on public paths."""

    __slots__ = ()

    @property
    def is_authenticated(self) -> bool:
        return False

    @property
    def display_name(self) -> str:
        return ""

    @property
    def identity(self) -> str:
        return ""


@runtime_checkable
class TokenVerifier(Protocol):
    """Anything that turns a token string into an ``AccessToken`` or raises ``GuardError``."""

    async def verify(self, token: str) -> AccessToken: ...


@runtime_checkable
class ReuseLimit(Protocol):
    """Optional for a ``TokenVerifier``: how long the guard may reuse a verified token.

    The guard keeps verified tokens until ``expires_at`` (plus leeway); a verifier whose
    answers must be asked again sooner (introspection: a revocation is only seen when the
    authorization server is asked, RFC 7662 §4) says until when, at the latest.
    """

    def reuse_until(self, token: str, verified: AccessToken, now: float) -> float: ...
