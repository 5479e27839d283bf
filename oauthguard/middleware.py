"""``OAuthGuard``: the pure-ASGI middleware. Wiring only; each check lives in its module."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import anyio
import httpx

from oauthguard._asgi import ASGIApp, Receive, Scope, Send, deny_websocket, send_response
from oauthguard._cache import ExpiringCache
from oauthguard.challenge import Challenger
from oauthguard.config import DEFAULT_ALGORITHMS, GuardConfig, build_config
from oauthguard.credentials import Credentials, extract
from oauthguard.discovery import AuthorizationServers
from oauthguard.errors import GuardError, TemporarilyUnavailable
from oauthguard.jwt import JWTVerifier
from oauthguard.keys import KeySet
from oauthguard.metadata import MetadataEndpoint, build_document, metadata_path, metadata_url
from oauthguard.tokens import AccessToken, AnonymousUser, AuthenticatedUser, TokenVerifier

logger = logging.getLogger("oauthguard")


def token_digest(token: str) -> str:
    """What the logs say instead of a token: a SHA-256 prefix."""
    return hashlib.sha256(token.encode()).hexdigest()[:12]


class OAuthGuard:
    """Makes an ASGI app an OAuth 2 resource server.

    Every HTTP request and WebSocket connection outside ``public_paths`` needs a valid
    access token; refused ones get the RFC 6750 / RFC 9449 challenge. The RFC 9728
    protected-resource metadata is served at its well-known URL. ``request.auth`` is the
    validated ``AccessToken`` and ``request.user`` a Starlette-compatible user.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        resource: str,
        authorization_servers: str | Iterable[str],
        audiences: str | Iterable[str] | None = None,
        algorithms: Iterable[str] = DEFAULT_ALGORITHMS,
        leeway: float = 30,
        jwks_uri: str | None = None,
        jwks_cache_ttl: float = 600,
        jwks_refresh_cooldown: float = 30,
        jwks_max_stale: float = 86400,
        strict_typ: bool = False,
        scopes_claim: str | Iterable[str] = ("scope", "scp"),
        public_paths: Iterable[str] = (),
        scopes_supported: Iterable[str] | None = None,
        resource_name: str | None = None,
        resource_documentation: str | None = None,
        max_token_bytes: int = 16 * 1024,
        token_cache_size: int = 10_000,
        realm: str | None = None,
        verifier: TokenVerifier | None = None,
        http_client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.app = app
        self.config: GuardConfig = build_config(
            resource=resource, authorization_servers=authorization_servers,
            audiences=audiences, algorithms=algorithms, leeway=leeway, jwks_uri=jwks_uri,
            jwks_cache_ttl=jwks_cache_ttl, jwks_refresh_cooldown=jwks_refresh_cooldown,
            jwks_max_stale=jwks_max_stale, strict_typ=strict_typ, scopes_claim=scopes_claim,
            public_paths=public_paths, scopes_supported=scopes_supported,
            resource_name=resource_name, resource_documentation=resource_documentation,
            max_token_bytes=max_token_bytes, token_cache_size=token_cache_size, realm=realm)
        config = self.config
        self.clock: Callable[[], float] = clock or time.time
        self.http = http_client or httpx.AsyncClient(timeout=5.0)
        self.servers = AuthorizationServers(self.http, self.clock)
        self.key_sets = {
            issuer: KeySet(issuer, self.http, self.clock, self.servers, jwks_uri=config.jwks_uri,
                           cache_ttl=config.jwks_cache_ttl,
                           refresh_cooldown=config.jwks_refresh_cooldown,
                           max_stale=config.jwks_max_stale)
            for issuer in config.authorization_servers
        }
        self.verifier: TokenVerifier = verifier or JWTVerifier(
            self.key_sets, audiences=config.audiences, algorithms=config.algorithms,
            leeway=config.leeway, strict_typ=config.strict_typ,
            scopes_claim=config.scopes_claim, clock=self.clock)
        self.tokens: ExpiringCache[AccessToken] = ExpiringCache(config.token_cache_size)
        self.challenger = Challenger(metadata_url(config.resource), realm=config.realm)
        self.metadata = {metadata_path(config.resource): MetadataEndpoint(self._document())}
        self._public_exact = frozenset(p for p in config.public_paths if not p.endswith("*"))
        self._public_prefixes = tuple(p[:-1] for p in config.public_paths if p.endswith("*"))

    def _document(self) -> dict[str, Any]:
        config = self.config
        return build_document(config.resource, {
            "authorization_servers": config.authorization_servers,
            "scopes_supported": config.scopes_supported,
            "bearer_methods_supported": ["header"],
            "resource_name": config.resource_name,
            "resource_documentation": config.resource_documentation,
        })

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        endpoint = self.metadata.get(path)
        if endpoint is not None and kind == "http":
            await endpoint(scope, receive, send)
            return
        scope["oauthguard"] = self
        if path in self._public_exact or path.startswith(self._public_prefixes or ("\0",)):
            scope["auth"], scope["user"] = None, AnonymousUser()
            await self.app(scope, receive, send)
            return
        credentials: Credentials | None = None
        try:
            credentials = extract(scope["headers"], scope.get("query_string", b""),
                                  self.config.max_token_bytes)
            token = await self.verify(credentials.token)
        except GuardError as error:
            await self.refuse(scope, receive, send, error, credentials)
            return
        except Exception:
            # Fail closed: a bug or an unexpected failure never lets a request through.
            logger.exception("unexpected error while checking a request to %s", path)
            await self.refuse(scope, receive, send, TemporarilyUnavailable(
                "the access token could not be checked; try again later"), credentials)
            return
        scope["auth"], scope["user"] = token, AuthenticatedUser(token)
        await self.app(scope, receive, send)

    async def verify(self, token: str) -> AccessToken:
        """The validated token, from the cache of verified tokens when it is there."""
        now = self.clock()
        cached = self.tokens.get(token, now)
        if cached is not None:
            return cached
        verified = await self.verifier.verify(token)
        if verified.expires_at is not None:
            self.tokens.put(token, verified, verified.expires_at + self.config.leeway, now)
        return verified

    async def refuse(self, scope: Scope, receive: Receive, send: Send, error: GuardError,
                     credentials: Credentials | None, challenge_scope: str | None = None) -> None:
        """Answer with the challenge for ``error`` (an HTTP response or a WebSocket denial)."""
        scheme = credentials.scheme if credentials is not None else None
        if credentials is not None:
            logger.info("refused %s %s: %s (token sha256:%s)", scope.get("method", "WS"),
                        scope["path"], error.description, token_digest(credentials.token))
        else:
            logger.info("refused %s %s: %s", scope.get("method", "WS"), scope["path"],
                        error.description or "no credentials")
        status, headers, body = self.challenger.response(error, scheme, challenge_scope)
        if scope["type"] == "websocket":
            await deny_websocket(scope, receive, send, status, headers, body)
        else:
            await send_response(send, status, headers, body)

    async def warm(self) -> None:
        """Fetch every issuer's keys now; failures are logged, never raised."""
        for key_set in self.key_sets.values():
            try:
                await key_set.warm()
            except Exception as exc:
                logger.warning("could not warm the keys of %s: %s", key_set.issuer, exc)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as tasks:
                async def receive_and_warm() -> Any:
                    message = await receive()
                    if message["type"] == "lifespan.startup":
                        tasks.start_soon(self.warm)  # startup never waits for the issuer
                    return message

                await self.app(scope, receive_and_warm, send)
                tasks.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise
