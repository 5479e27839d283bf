"""Protecting MCP servers built with the official ``mcp`` SDK (2.x).

``protect(app, ...)`` puts ``OAuthGuard`` and ``MCPAuth`` around the SDK's streamable-HTTP
app; inside tools the SDK's ``get_access_token()`` returns the token oauthguard validated.
``TokenVerifier`` is for servers that keep the SDK's own auth.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from urllib.parse import urlsplit

import httpx

try:
    from mcp.server.auth.middleware.auth_context import auth_context_var
    from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser as _SDKUser
    from mcp.server.auth.provider import AccessToken as SDKAccessToken
    from pydantic_core import from_json
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "oauthguard.mcp needs the mcp package: pip install 'oauthguard[mcp]'"
    ) from exc

from oauthguard._asgi import ASGIApp, Message, Receive, Scope, Send, send_response
from oauthguard._htu import origin_of
from oauthguard._redaction import redacted_traceback, token_digest
from oauthguard.context import context_of
from oauthguard.dpop import check_bearer
from oauthguard.errors import ConfigurationError, GuardError
from oauthguard.introspection import Introspection
from oauthguard.middleware import OAuthGuard
from oauthguard.policy import Requirement, granted_scopes, require
from oauthguard.server import ResourceServer
from oauthguard.settings import JWT, DPoP, Issuer, Limits, Metadata
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
        token=raw,
        client_id=token.client_id or "",
        scopes=sorted(token.scopes),
        expires_at=expires_at,
        resource=resource,
        subject=token.subject,
        claims=dict(token.claims),
    )


class MCPUser(_SDKUser):
    """``request.user`` on an MCP endpoint: the SDK's ``AuthenticatedUser`` (which the SDK uses
    for session ownership and ``get_access_token()``), also carrying oauthguard's token.

    Its signature is the guard's ``user_factory`` with the resource bound:
    ``OAuthGuard(..., user_factory=functools.partial(MCPUser, resource=url))`` builds one per
    token, which ``protect()`` does.
    """

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


def may_name(body: bytes, needles: Iterable[bytes]) -> bool:
    """Whether a JSON body may hold one of the strings ``needles`` (each JSON-encoded, quotes
    included). RFC 8259 §7: a string without escapes is its characters as they are, so a
    body with no backslash holds a string only where its JSON form appears; a body with
    one could spell it otherwise."""
    return b"\\" in body or any(map(body.__contains__, needles))


def tools_called(body: bytes) -> list[str]:
    """Names of the tools a JSON-RPC message (or batch) calls; ``[]`` for anything else.

    Parsed by the SDK's own JSON parser, so that no body can mean one thing here and
    another to the SDK (which answers a parse error itself).
    """
    try:
        message = from_json(body)
    except ValueError:
        return []
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
    """Pure ASGI, inside ``OAuthGuard``: bridges the token to the SDK and checks tool scopes.

    Sets the SDK's auth context to ``request.user``, an ``MCPUser``, so
    ``mcp.server.auth.middleware.auth_context.get_access_token()`` works in tools (the guard
    builds it once per token with ``user_factory``, as ``protect()`` sets it up; otherwise it
    is built here for each request).

    With ``tool_scopes``, a ``tools/call`` of a named tool (alone or in a batch) also needs
    that tool's scopes, on top of what the guard's rule for the path needs; otherwise the
    guard answers 403 ``insufficient_scope`` naming the whole set (the rule's scopes, then
    the tool's), so the client can step up. The body is read (up to ``max_body_bytes``, or
    413) only when the token lacks some tool's scopes.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        tool_scopes: Mapping[str, str | Iterable[str]] | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.app = app
        self.tools: dict[str, Requirement] = {}
        for tool, scopes in (tool_scopes or {}).items():
            try:
                self.tools[tool] = require(scopes)
            except ConfigurationError as error:
                raise ConfigurationError(f"tool_scopes[{tool!r}]: {error}") from None
        self.max_body_bytes = max_body_bytes
        # Each tool as its name appears in a JSON body without escapes, and what it needs.
        self._needles = [
            (json.dumps(name, ensure_ascii=False).encode(), frozenset(requirement.scopes))
            for name, requirement in self.tools.items()
        ]
        # A token's scopes -> the needles of the tools they do not reach, with the guard's
        # scope_implies (one guard, so fixed); bounded.
        self._out_of_reach: dict[frozenset[str], tuple[bytes, ...]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan (MCP's transport is HTTP only)
            await self.app(scope, receive, send)
            return
        user = scope.get("user")
        if not isinstance(user, MCPUser):  # the guard's user_factory is not MCPUser
            user = self.user_for(scope)
            if user is None:  # a public path
                await self.app(scope, receive, send)
                return
        needles = self.out_of_reach(scope) if scope["method"] == "POST" else ()
        if needles:  # the token lacks some tool's scopes: see whether the body calls it
            body = await _read_body(receive, self.max_body_bytes)
            if body is None:
                await send_response(
                    send, 413, [(b"content-type", b"text/plain")], b"request body too large"
                )
                return
            receive = _replay(body, receive)
            try:
                if may_name(body, needles):
                    self.check_tools(scope, tools_called(body))
            except GuardError as error:
                await context_of(scope, "MCPAuth").refuse(scope, receive, send, error)
                return
        reset = auth_context_var.set(user)
        try:
            await self.app(scope, receive, send)
        finally:
            auth_context_var.reset(reset)

    @staticmethod
    def user_for(scope: Scope) -> MCPUser | None:
        """The ``MCPUser`` of a request whose guard has another ``user_factory`` (built for
        each request), or None on a public path."""
        # Fail closed: without the guard, tool scopes would go unchecked.
        server = context_of(scope, "MCPAuth (use oauthguard.mcp.protect(...))").server
        token = scope.get("auth")
        if not isinstance(token, AccessToken):
            return None
        # The guard accepted these credentials, so reading them again cannot fail.
        raw = server.credentials(scope["headers"], b"").token
        user = scope["user"] = MCPUser(token, raw, server.resource)
        return user

    def out_of_reach(self, scope: Scope) -> tuple[bytes, ...]:
        """The tools whose scopes the request's token lacks, as ``may_name`` looks for
        them; none means no call can be refused, and the body is passed on unread."""
        if not self._needles:
            return ()
        scopes = scope["auth"].scopes
        needles = self._out_of_reach.get(scopes)
        if needles is None:
            granted = granted_scopes(scopes, context_of(scope, "MCPAuth").implies)
            needles = tuple(needle for needle, needs in self._needles if not needs <= granted)
            if len(self._out_of_reach) >= 256:  # one entry per set of scopes seen
                self._out_of_reach.clear()
            self._out_of_reach[scopes] = needles
        return needles

    def check_tools(self, scope: Scope, names: Iterable[str]) -> None:
        """MCP authorization: the scopes of every tool called, with the path rule's; an
        ``InsufficientScope`` whose ``scope`` names all of them (RFC 6750 §3.1)."""
        needed = [self.tools[name] for name in dict.fromkeys(names) if name in self.tools]
        if len(needed) == 1:
            needed[0].enforce(scope)
        elif needed:  # a batch: every tool's scopes, in the order they are called
            require([s for requirement in needed for s in requirement.scopes]).enforce(scope)


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None when it is longer than ``limit``."""
    message = await receive()
    if message["type"] == "http.request" and not message.get("more_body", False):
        body: bytes = message.get("body", b"")  # the usual case: one message
        return body if len(body) <= limit else None
    chunks, size = [], 0
    while message["type"] == "http.request":
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
        message = await receive()
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


def protect(
    app: ASGIApp,
    *,
    resource: str,
    authorization_servers: str | Issuer | Iterable[str | Issuer],
    scopes: str | Iterable[str] = (),
    tool_scopes: Mapping[str, str | Iterable[str]] | None = None,
    resources: str | Iterable[str] = (),
    jwt: JWT | None = None,
    dpop: DPoP | str | None = None,
    introspection: Introspection | None = None,
    limits: Limits | None = None,
    http_client: httpx.AsyncClient | None = None,
    clock: Callable[[], float] | None = None,
    metadata: Metadata | None = None,
) -> OAuthGuard:
    """An MCP streamable-HTTP app behind ``OAuthGuard`` and ``MCPAuth``.

    ``resource`` is the endpoint URL exactly as clients reach it (``https://host/mcp``);
    every method on it needs a token with ``scopes`` (a path rule, so every 401 names them),
    and a ``tools/call`` of a tool in ``tool_scopes`` needs that tool's scopes too.
    ``/.well-known/*`` stays public. ``resources`` are other resources served beside it. The
    other settings are ``ResourceServer``'s; the
    metadata's ``scopes_supported`` defaults to every scope named here. DPoP proofs must
    name the origin of ``resource`` whatever the Host header says, unless ``dpop`` is a
    ``DPoP(...)`` that says otherwise (``public_origin=None``: each request's own).
    Introspection responses need ``aud`` unless ``Introspection(require_aud=)`` is given.
    """
    endpoint = require(scopes)
    inner = MCPAuth(app, tool_scopes=tool_scopes)
    named = dict.fromkeys(endpoint.scopes)
    for requirement in inner.tools.values():
        named.update(dict.fromkeys(requirement.scopes))
    if metadata is None:
        metadata = Metadata(scopes_supported=tuple(named))
    if not isinstance(dpop, DPoP):
        dpop = DPoP(mode=DPoP.of(dpop).mode, public_origin=_pinned_origin(resource, resources))
    server = ResourceServer(
        resource=resource,
        authorization_servers=authorization_servers,
        resources=resources,
        jwt=jwt,
        dpop=dpop,
        introspection=requiring_aud(introspection),
        limits=limits,
        http_client=http_client,
        clock=clock,
        user_factory=functools.partial(MCPUser, resource=resource),
    )
    path = urlsplit(resource).path or "/"
    return OAuthGuard(
        inner,
        server,
        rules={path: endpoint} if endpoint.scopes else None,
        public_paths=("/.well-known/*",),
        metadata=metadata,
    )


def _pinned_origin(resource: str, resources: str | Iterable[str]) -> str:
    """The origin of ``resource``, which must then be the origin of every other resource
    served too (DPoP for one elsewhere could never pass)."""
    origin = origin_of(resource)
    for other in (resources,) if isinstance(resources, str) else resources:
        if isinstance(other, str) and origin_of(other).lower() != origin.lower():
            raise ConfigurationError(
                f"resources: {other!r} is not on {origin}, the origin DPoP proofs are pinned "
                "to by default; pass dpop=DPoP(public_origin=...) with the one origin clients "
                "reach, or dpop=DPoP(public_origin=None) to take it from each request"
            )
    return origin


def requiring_aud(settings: Introspection | None) -> Introspection | None:
    """MCP authorization (token audience validation): a server MUST check that a token was
    issued for it (RFC 8707), so introspection responses need ``aud`` unless
    ``Introspection(require_aud=)`` says otherwise."""
    if isinstance(settings, Introspection) and settings.require_aud is None:
        return dataclasses.replace(settings, require_aud=True)
    return settings


class TokenVerifier:
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
        authorization_servers: str | Issuer | Iterable[str | Issuer] | None = None,
        jwt: JWT | None = None,
        introspection: Introspection | None = None,
        limits: Limits | None = None,
        http_client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if server is None:
            if resource is None or authorization_servers is None:
                raise ConfigurationError(
                    "TokenVerifier needs server=ResourceServer(...), or resource= and "
                    "authorization_servers= to build one"
                )
            server = ResourceServer(
                resource=resource,
                authorization_servers=authorization_servers,
                jwt=jwt,
                introspection=requiring_aud(introspection),
                limits=limits,
                http_client=http_client,
                clock=clock,
            )
        elif not isinstance(server, ResourceServer):
            raise ConfigurationError(
                f"server must be an oauthguard.ResourceServer, got {type(server).__name__}"
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
                "token refused: %s (token sha256:%s)", error.description, token_digest(token)
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
