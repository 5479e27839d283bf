"""The MCP SDK's ``TokenVerifier`` protocol on oauthguard's verification (for servers that
keep the SDK's own auth), and the SDK's ``AccessToken`` for a token oauthguard validated."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Callable, Iterable

import httpx
from mcp.server.auth.provider import AccessToken as SDKAccessToken

from oauthguard._core.adapters import given_or_built
from oauthguard._core.issuer import IssuerEntry
from oauthguard._core.server import ResourceServer
from oauthguard._core.settings import JWT, Issuer, Limits
from oauthguard._dpop.proof import check_bearer
from oauthguard._introspection.settings import Introspection
from oauthguard._wire.errors import GuardError
from oauthguard._wire.redaction import redacted_traceback, token_digest
from oauthguard._wire.tokens import AccessToken

logger = logging.getLogger("oauthguard")


def sdk_access_token(token: AccessToken, raw: str, resource: str | None) -> SDKAccessToken:
    """The SDK's ``AccessToken`` for a token oauthguard validated.

    ``resource`` is the RFC 8707 resource the token was checked against (its ``aud``).
    """
    expires_at = int(token.expires_at) if token.expires_at is not None else None
    client_id = token.client_id
    if client_id is None:
        # The SDK binds a session to (client_id, iss, sub): a token naming neither a client
        # nor a subject is its own principal, not one with every other such token.
        client_id = "" if token.subject is not None else "token sha256:" + _digest(raw)
    return SDKAccessToken(
        token=raw,
        client_id=client_id,
        scopes=sorted(token.scopes),
        expires_at=expires_at,
        resource=resource,
        subject=token.subject,
        claims=dict(token.claims),
    )


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def requiring_aud(settings: Introspection | None) -> Introspection | None:
    """MCP authorization (token audience validation): a server MUST check that a token was
    issued for it (RFC 8707), so introspection responses need ``aud`` unless
    ``Introspection(require_aud=)`` says otherwise."""
    if isinstance(settings, Introspection) and settings.require_aud is None:
        return dataclasses.replace(settings, require_aud=True)
    return settings


class MCPTokenVerifier:
    """The SDK's ``TokenVerifier`` protocol, backed by oauthguard's verification.

    For servers that keep the SDK's built-in auth (``MCPServer(token_verifier=...,
    auth=AuthSettings(...))``). Takes the same arguments as ``OAuthGuard``; as under
    ``protect()``, introspection responses need ``aud`` unless
    ``Introspection(require_aud=)`` is given. A token that fails any check gives None (the
    SDK then answers 401); so does a DPoP-bound token, since the SDK only speaks Bearer
    (RFC 9449 §7.2).
    """

    def __init__(
        self,
        server: ResourceServer | None = None,
        *,
        resource: str | None = None,
        authorization_servers: str | Issuer | Iterable[IssuerEntry] | None = None,
        jwt: JWT | None = None,
        introspection: Introspection | None = None,
        limits: Limits | None = None,
        http_client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        server = given_or_built(
            "MCPTokenVerifier",
            server,
            resource=resource,
            authorization_servers=authorization_servers,
            jwt=jwt,
            introspection=requiring_aud(introspection),
            limits=limits,
            http_client=http_client,
            clock=clock,
        )
        #: The core that verifies tokens.
        self.server = server

    async def verify_token(self, token: str) -> SDKAccessToken | None:
        """The SDK's ``AccessToken`` for a valid token, None for any other."""
        try:
            verified = await self.server.verify(token)
            check_bearer(verified)  # RFC 9449 §7.2: the SDK only speaks Bearer
        except GuardError as error:
            logger.info(
                "token refused: %s (token sha256:%s); see %s",
                error.description,
                token_digest(token),
                error.docs,
            )
            return None
        except Exception as exc:  # fail closed: a bug never lets a token through
            logger.error(
                "unexpected error while verifying a token (token sha256:%s)\n%s",
                token_digest(token),
                redacted_traceback(exc, token),
            )
            return None
        return sdk_access_token(verified, token, self.server.resource)

    async def aclose(self) -> None:
        """Close the HTTP client the verifier fetches keys with (if its server made it)."""
        await self.server.aclose()
