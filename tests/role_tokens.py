"""A ``TokenVerifier`` whose tokens carry roles, clients and claims the test chose: the
documented pluggable verifier, standing in for an issuer whose roles claims are read."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from oauthguard import AccessToken, InvalidToken


class RoleTokens:
    """Opaque tokens issued here, each verified to the ``AccessToken`` it was issued as."""

    def __init__(self, audience: str, issuer: str = "https://issuer.test") -> None:
        self.audience, self.issuer = audience, issuer
        self.tokens: dict[str, AccessToken] = {}

    def issue(
        self,
        scopes: str = "",
        *,
        roles: Iterable[str] = (),
        client_id: str | None = "app",
        claims: Mapping[str, Any] | None = None,
        subject: str = "user-1",
    ) -> str:
        token = secrets.token_urlsafe(16)
        self.tokens[token] = AccessToken(
            subject=subject,
            client_id=client_id,
            scopes=frozenset(scopes.split()),
            audience=(self.audience,),
            issuer=self.issuer,
            expires_at=None,
            claims=dict(claims or {}),
            roles=frozenset(roles),
        )
        return token

    def bearer(self, scopes: str = "", **options: Any) -> dict[str, str]:
        """The ``Authorization`` header of a new token."""
        return {"Authorization": f"Bearer {self.issue(scopes, **options)}"}

    async def verify(self, token: str) -> AccessToken:
        found = self.tokens.get(token)
        if found is None:
            raise InvalidToken("the token is unknown")
        return found
