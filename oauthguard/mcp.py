"""Protecting MCP servers built with the official ``mcp`` SDK (2.x).

``protect(app, ...)`` puts ``OAuthGuard`` and ``MCPAuth`` around the SDK's streamable-HTTP
app; inside tools the SDK's ``get_access_token()`` returns the token oauthguard validated.
``TokenVerifier`` is for servers that keep the SDK's own auth.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

try:
    from mcp.server.auth.middleware.auth_context import auth_context_var
    from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser as _SDKUser
    from mcp.server.auth.provider import AccessToken as SDKAccessToken
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "oauthguard.mcp needs the mcp package: pip install 'oauthguard[mcp]'") from exc

from oauthguard._asgi import ASGIApp, Message, Receive, Scope, Send, send_response
from oauthguard.credentials import Credentials, extract
from oauthguard.errors import ConfigurationError, GuardError, InsufficientScope
from oauthguard.middleware import OAuthGuard
from oauthguard.tokens import AccessToken

__all__ = ["MCPAuth", "MCPUser", "TokenVerifier", "protect", "sdk_access_token"]

logger = logging.getLogger("oauthguard")

#: Largest request body read to find the tools it calls (the SDK's own default limit).
MAX_BODY_BYTES = 4 * 1024 * 1024


def sdk_access_token(token: AccessToken, raw: str, resource: str | None) -> SDKAccessToken:
    """The SDK's ``AccessToken`` for a token oauthguard validated.

    ``resource`` is the RFC 8707 resource the token was checked against (its ``aud``).
    """
    expires_at = int(token.expires_at) if token.expires_at is not None else None
    return SDKAccessToken(
        token=raw, client_id=token.client_id or "", scopes=sorted(token.scopes),
        expires_at=expires_at, resource=resource, subject=token.subject,
        claims=dict(token.claims))


class MCPUser(_SDKUser):
    """``request.user`` on an MCP endpoint: the SDK's ``AuthenticatedUser`` (which the SDK uses
    for session ownership and ``get_access_token()``), also carrying oauthguard's token."""

    def __init__(self, token: AccessToken, raw: str, resource: str | None) -> None:
        super().__init__(sdk_access_token(token, raw, resource))
        #: The ``oauthguard.AccessToken`` (``request.auth`` holds the same).
        self.token = token

    @property
    def display_name(self) -> str:
        return self.token.subject or self.token.client_id or ""

    @property
    def identity(self) -> str:
        return self.display_name


def _scope_tuple(name: str, value: str | Iterable[str]) -> tuple[str, ...]:
    items = value.split() if isinstance(value, str) else list(value)
    if not all(isinstance(item, str) and item and " " not in item for item in items):
        raise ConfigurationError(f"{name}: scopes must be non-empty strings without spaces")
    return tuple(dict.fromkeys(items))


def tools_called(body: bytes) -> list[str]:
    """Names of the tools a JSON-RPC message (or batch) calls; ``[]`` for anything else."""
    try:
        message = json.loads(body)
    except (ValueError, RecursionError):
        return []  # the SDK answers a parse error itself
    messages = message if isinstance(message, list) else [message]
    names = []
    for item in messages:
        if isinstance(item, dict) and item.get("method") == "tools/call":
            params = item.get("params")
            name = params.get("name") if isinstance(params, dict) else None
            if isinstance(name, str):
                names.append(name)
    return names


class MCPAuth:
    """Pure ASGI, inside ``OAuthGuard``: bridges the token to the SDK and checks scopes.

    Sets ``scope["user"]`` to an ``MCPUser`` and the SDK's auth context, so
    ``mcp.server.auth.middleware.auth_context.get_access_token()`` works in tools. With
    ``scopes`` every request needs them; with ``tool_scopes`` a ``tools/call`` of a named
    tool also needs that tool's scopes, else a 403 ``insufficient_scope`` challenge names
    the whole set (endpoint scopes, then the tool's) so the client can step up.
    """

    def __init__(self, app: ASGIApp, *, scopes: str | Iterable[str] = (),
                 tool_scopes: Mapping[str, str | Iterable[str]] | None = None,
                 max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.scopes = _scope_tuple("scopes", scopes)
        self.tool_scopes = {
            tool: tuple(dict.fromkeys(self.scopes + _scope_tuple(f"tool_scopes[{tool!r}]", s)))
            for tool, s in (tool_scopes or {}).items()}
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        guard: OAuthGuard | None = scope.get("oauthguard")
        token = scope.get("auth")
        if scope["type"] != "http" or guard is None or not isinstance(token, AccessToken):
            await self.app(scope, receive, send)  # lifespan, or a public path
            return
        credentials = extract(scope["headers"], b"", guard.config.max_token_bytes)
        needed = self.scopes
        if self.tool_scopes and scope["method"] == "POST":
            body = await _read_body(receive, self.max_body_bytes)
            if body is None:
                await send_response(send, 413, [(b"content-type", b"text/plain")],
                                    b"request body too large")
                return
            for tool in tools_called(body):
                needed = tuple(dict.fromkeys(needed + self.tool_scopes.get(tool, ())))
            receive = _replay(body, receive)
        if not token.has_scopes(*needed):
            await self._refuse(guard, scope, receive, send, credentials, needed)
            return
        user = MCPUser(token, credentials.token, guard.config.resource)
        scope["user"] = user
        reset = auth_context_var.set(user)
        try:
            await self.app(scope, receive, send)
        finally:
            auth_context_var.reset(reset)

    @staticmethod
    async def _refuse(guard: OAuthGuard, scope: Scope, receive: Receive, send: Send,
                      credentials: Credentials, needed: tuple[str, ...]) -> None:
        # RFC 6750 §3.1 / MCP authorization: 403 with every scope the request needs.
        wanted = " ".join(needed)
        error = InsufficientScope(f"this request needs the scopes: {wanted}")
        await guard.refuse(scope, receive, send, error, credentials, challenge_scope=wanted)


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None when it is longer than ``limit``."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app the body already read, then the real channel."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def protect(app: ASGIApp, *, resource: str, authorization_servers: str | Iterable[str],
            scopes: str | Iterable[str] = (),
            tool_scopes: Mapping[str, str | Iterable[str]] | None = None,
            **options: Any) -> OAuthGuard:
    """An MCP streamable-HTTP app behind ``OAuthGuard`` and ``MCPAuth``.

    ``resource`` is the endpoint URL exactly as clients reach it (``https://host/mcp``);
    every method on it needs a token, ``/.well-known/*`` stays public. ``options`` go to
    ``OAuthGuard``; ``scopes_supported`` defaults to every scope named here.
    """
    inner = MCPAuth(app, scopes=scopes, tool_scopes=tool_scopes)
    named = dict.fromkeys(inner.scopes)
    for needed in inner.tool_scopes.values():
        named.update(dict.fromkeys(needed))
    options.setdefault("scopes_supported", tuple(named))
    options.setdefault("public_paths", ("/.well-known/*",))
    guard = _EndpointGuard(inner, resource=resource,
                           authorization_servers=authorization_servers, **options)
    guard.endpoint_scope = " ".join(inner.scopes) or None
    return guard


class _EndpointGuard(OAuthGuard):
    """MCP authorization: a 401 names the scopes the endpoint needs, so a client asks for
    those first and steps up for a tool's scopes on its 403."""

    endpoint_scope: str | None = None

    async def refuse(self, scope: Scope, receive: Receive, send: Send, error: GuardError,
                     credentials: Credentials | None, challenge_scope: str | None = None) -> None:
        if challenge_scope is None and error.status == 401:
            challenge_scope = self.endpoint_scope
        await super().refuse(scope, receive, send, error, credentials, challenge_scope)


class TokenVerifier:
    """The SDK's ``TokenVerifier`` protocol, backed by oauthguard's verification.

    For servers that keep the SDK's built-in auth (``MCPServer(token_verifier=...,
    auth=AuthSettings(...))``). Takes the same arguments as ``OAuthGuard``. A token that
    fails any check gives None (the SDK then answers 401); so does a DPoP-bound token, since
    the SDK only speaks Bearer (RFC 9449 §7.2).
    """

    def __init__(self, *, resource: str, authorization_servers: str | Iterable[str],
                 **options: Any) -> None:
        self.guard = OAuthGuard(_unused_app, resource=resource,
                                authorization_servers=authorization_servers, **options)

    async def verify_token(self, token: str) -> SDKAccessToken | None:
        """The SDK's ``AccessToken`` for a valid token, None for any other."""
        try:
            verified = await self.guard.verify(token)
        except GuardError as error:
            logger.info("token refused: %s", error.description)
            return None
        except Exception:  # fail closed: a bug never lets a token through
            logger.exception("unexpected error while verifying a token")
            return None
        if verified.jkt is not None:
            logger.info("token refused: a DPoP-bound token was sent as a Bearer token")
            return None
        return sdk_access_token(verified, token, self.guard.config.resource)

    async def aclose(self) -> None:
        """Close the HTTP client the verifier fetches keys with."""
        await self.guard.http.aclose()


async def _unused_app(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("the TokenVerifier's guard is never called as an ASGI app")
