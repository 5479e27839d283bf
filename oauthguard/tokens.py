"""The validated access token handed to the application as ``request.auth``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A validated access token, whatever its source (JWT or introspection).

    ``scopes`` is what Starlette's ``@requires`` reads; ``claims`` holds every claim of the
    JWT or every member of the introspection response.
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

    def has_scopes(self, *scopes: str) -> bool:
        """True when the token carries every one of ``scopes``."""
        return all(scope in self.scopes for scope in scopes)


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
