"""``token_format="auto"``: JWTs of our issuers verified locally, the other tokens introspected."""

from __future__ import annotations

from oauthguard._introspection.verifier import IntrospectionVerifier
from oauthguard._verify.jwt import JWTVerifier
from oauthguard._wire.tokens import AccessToken


class AutoVerifier:
    """``token_format="auto"``: JWTs of our issuers are verified locally, the rest introspected.

    Only the unverified ``iss`` routes the token; a JWT of ours that fails is refused, it
    is never retried through introspection.
    """

    def __init__(self, jwt: JWTVerifier, introspection: IntrospectionVerifier) -> None:
        self.jwt = jwt
        self.introspection = introspection

    async def verify(self, token: str) -> AccessToken:
        if self.jwt.issuer_of(token) is not None:
            return await self.jwt.verify(token)
        return await self.introspection.verify(token)

    def reuse_until(self, token: str, verified: AccessToken, now: float) -> float:
        if self.jwt.issuer_of(token) is not None:
            return self.jwt.reuse_until(token, verified, now)
        return self.introspection.reuse_until(token, verified, now)
