"""Protecting MCP servers built with the official ``mcp`` SDK (2.x).

``protect(app, ...)`` puts ``OAuthGuard`` and ``MCPAuth`` around the SDK's streamable-HTTP
app; inside tools the SDK's ``get_access_token()`` returns the token oauthguard validated.
``MCPTokenVerifier`` is for servers that keep the SDK's own auth. A tool that calls another
API on the caller's behalf gets a token for it with ``exchanged_token(exchange, resource=...)``
(RFC 8693; the MCP authorization spec forbids passing the caller's token on).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from urllib.parse import urlsplit

import httpx

try:
    from mcp.server.auth.middleware.auth_context import auth_context_var, get_access_token
    from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser as _SDKUser
    from mcp.server.mcpserver.exceptions import ToolError
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "oauthguard.mcp needs the mcp package: pip install 'oauthguard[mcp]'"
    ) from exc

from oauthguard._asgi.context import context_of
from oauthguard._asgi.endpoints import refusal_handler_of
from oauthguard._asgi.guard import OAuthGuard
from oauthguard._asgi.types import ASGIApp, Receive, Scope, Send, send_response
from oauthguard._core.issuer import IssuerEntry
from oauthguard._core.server import ResourceServer
from oauthguard._core.settings import JWT, DPoP, Issuer, Limits, Metadata
from oauthguard._dpop.htu import origin_of
from oauthguard._exchange.answers import ExchangedToken, ExchangeRefused
from oauthguard._exchange.settings import TokenExchange
from oauthguard._introspection.settings import Introspection
from oauthguard._mcp.calls import (
    COVERED_PROTOCOL_VERSIONS,
    UNREAD,
    ClientGone,
    read_body,
    replaying,
    tool_name,
    tools_requested,
    unexpected_failure,
)
from oauthguard._mcp.verifier import MCPTokenVerifier, requiring_aud, sdk_access_token
from oauthguard._policy import Requirement, require
from oauthguard._wire.errors import (
    ConfigurationError,
    GuardError,
    InsufficientScope,
    TemporarilyUnavailable,
)
from oauthguard._wire.tokens import AccessToken

__all__ = [
    "COVERED_PROTOCOL_VERSIONS",
    "MCPAuth",
    "MCPTokenVerifier",
    "MCPUser",
    "exchanged_token",
    "protect",
    "sdk_access_token",
]

logger = logging.getLogger("oauthguard")

#: What the tools a token can call depend on, but claims: its scopes, roles and client.
Reach = tuple[frozenset[str], frozenset[str], str | None]

#: Largest request body read to find the tools it calls (the SDK's own default limit).
MAX_BODY_BYTES = 4 * 1024 * 1024


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


class MCPAuth:
    """Pure ASGI, inside ``OAuthGuard``: bridges the token to the SDK and checks tool scopes.

    Sets the SDK's auth context to ``request.user``, an ``MCPUser``, so
    ``mcp.server.auth.middleware.auth_context.get_access_token()`` works in tools (the guard
    builds it once per token with ``user_factory``, as ``protect()`` sets it up; otherwise it
    is built here for each request).

    With ``tool_scopes``, a ``tools/call`` of a named tool (alone or in a batch) also needs
    that tool's scopes, on top of what the guard's rule for the path needs; otherwise the
    guard answers 403 ``insufficient_scope`` naming the whole set (the rule's scopes, then
    the tool's), so the client can step up. A tool's entry is its scopes (a string or a
    list) or a ``require(scopes=..., roles=..., clients=..., claims=...)``; a role, client
    or claim the token lacks is a 403 ``insufficient_scope`` whose challenge names no
    ``scope`` unless scopes are missing too (see ``require``). A tool named in the
    ``Mcp-Name`` header counts as called. A body not read with certainty (not plain UTF-8
    RFC 8259 JSON: a BOM, UTF-16 or UTF-32, a duplicated member, a lone surrogate, nesting
    too deep), or a request naming an MCP revision not in ``COVERED_PROTOCOL_VERSIONS``, or
    a WebSocket (its messages go unread), may call every tool, so it needs every tool's
    scopes, roles, clients and claims. The body is read (up to ``max_body_bytes``, or 413)
    only when the token lacks what some tool needs.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        tool_scopes: Mapping[str, str | Iterable[str] | Requirement] | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.app = app
        # The guard gives the app it wraps its GuardError handler, so that it need not watch
        # each response start; MCPAuth answers its own refusals, and passes the handler on
        # to an app that takes one (a Starlette app, as the SDK's is).
        handles = refusal_handler_of(app)
        if handles is not None:
            self.add_exception_handler = handles.add_exception_handler
        self.tools: dict[str, Requirement] = {}
        for tool, entry in (tool_scopes or {}).items():
            try:
                self.tools[tool_name(tool)] = tool_requirement(entry)
            except ConfigurationError as error:
                raise ConfigurationError(f"tool_scopes[{tool!r}]: {error}") from None
        self.max_body_bytes = max_body_bytes
        # What a request that may call any tool needs: what every tool needs, in order.
        self.every_tool = Requirement.all_of(self.tools.values())
        # Each tool as its name appears in a JSON body without escapes, and what it needs:
        # worked out once per scopes, roles and client, or for each token with claims.
        needles = [
            (json.dumps(name, ensure_ascii=False).encode(), requirement)
            for name, requirement in self.tools.items()
        ]
        self._needles = [pair for pair in needles if not pair[1].needs_claims]
        self._needles_by_claims = [pair for pair in needles if pair[1].needs_claims]
        # A token's scopes, roles and client -> the needles of the tools they do not reach,
        # with the scope_implies of the guard they were worked out for; bounded.
        self._out_of_reach: dict[Reach, tuple[bytes, ...]] = {}
        self._implies: Mapping[str, frozenset[str]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" and scope["type"] != "websocket":  # lifespan
            await self.app(scope, receive, send)
            return
        user = scope.get("user")
        if not isinstance(user, MCPUser):  # the guard's user_factory is not MCPUser
            user = self.user_for(scope)
            if user is None:  # a public path
                await self.app(scope, receive, send)
                return
        # Both SDK transports read a JSON-RPC body on a POST alone (GET is the SSE stream,
        # DELETE ends a session, anything else is a 405); a WebSocket may carry any message.
        needles = self.out_of_reach(scope) if scope.get("method", "POST") == "POST" else ()
        if needles:  # the token lacks some tool's scopes: see what the request calls
            checked = await self._checked(scope, receive, send, needles)
            if checked is None:  # answered here, or the client is gone
                return
            receive = checked
        reset = auth_context_var.set(user)
        try:
            await self.app(scope, receive, send)
        finally:
            auth_context_var.reset(reset)

    async def _checked(
        self, scope: Scope, receive: Receive, send: Send, needles: tuple[bytes, ...]
    ) -> Receive | None:
        """A ``receive`` replaying the body of a request that calls no tool out of the
        token's reach; None once the request is answered (413, 403 or a WebSocket denied,
        503) or abandoned."""
        websocket, body = scope["type"] == "websocket", b""
        if not websocket:
            try:
                read = await read_body(receive, self.max_body_bytes)
            except ClientGone:
                return None
            if read is None:
                await send_response(
                    send, 413, [(b"content-type", b"text/plain")], b"request body too large"
                )
                return None
            body, receive = read, replaying(read, receive)
        try:
            # The messages of a WebSocket are not read here: it may call any tool.
            self.check_tools(
                scope, None if websocket else tools_requested(scope["headers"], body, needles)
            )
        except GuardError as error:
            await context_of(scope, "MCPAuth").refuse(scope, receive, send, error)
            return None
        except Exception as exc:  # fail closed: a bug never lets a call through
            user = scope.get("user")
            raw = user.access_token.token if isinstance(user, MCPUser) else None
            failure = unexpected_failure(exc, scope.get("path"), raw)
            await context_of(scope, "MCPAuth").refuse(scope, receive, send, failure)
            return None
        return receive

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
        """The tools whose needs the request's token does not meet, as ``may_name`` looks
        for them; none means no call can be refused, and the body is passed on unread."""
        if not self._needles and not self._needles_by_claims:
            return ()
        implies = context_of(scope, "MCPAuth").implies
        if implies is not self._implies:  # another guard's: what it grants may differ
            self._out_of_reach.clear()
            self._implies = implies
        token: AccessToken = scope["auth"]
        reach = (token.scopes, token.roles, token.client_id)
        needles = self._out_of_reach.get(reach)
        if needles is None:
            needles = tuple(n for n, needs in self._needles if not needs.met_by(token, implies))
            if len(self._out_of_reach) >= 256:  # one entry per scopes, roles and client seen
                self._out_of_reach.clear()
            self._out_of_reach[reach] = needles
        if self._needles_by_claims:
            needles += tuple(
                n for n, needs in self._needles_by_claims if not needs.met_by(token, implies)
            )
        return needles

    def check_tools(self, scope: Scope, names: Iterable[str] | None) -> None:
        """MCP authorization: what every tool called needs (every tool, for None), with the
        path rule's scopes; an ``InsufficientScope`` whose ``scope`` names all of them
        (RFC 6750 §3.1), or none when only roles, clients or claims are missing."""
        if names is None:
            try:
                self.every_tool.enforce(scope)
            except InsufficientScope as error:
                raise InsufficientScope(
                    f"{UNREAD}; {error.description}", scheme=error.scheme, **error.params
                ) from None
            return
        if not names:
            return
        needed = [self.tools[name] for name in dict.fromkeys(names) if name in self.tools]
        if len(needed) == 1:
            needed[0].enforce(scope)
        elif needed:  # a batch: what every tool needs, in the order they are called
            Requirement.all_of(needed).enforce(scope)


def protect(
    app: ASGIApp,
    *,
    resource: str,
    authorization_servers: str | Issuer | Iterable[IssuerEntry],
    scopes: str | Iterable[str] = (),
    tool_scopes: Mapping[str, str | Iterable[str] | Requirement] | None = None,
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
    and a ``tools/call`` of a tool in ``tool_scopes`` needs what that tool's entry names
    too: scopes, or a ``require(...)`` with roles, clients or claims.
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


def tool_requirement(entry: str | Iterable[str] | Requirement) -> Requirement:
    """A ``tool_scopes`` entry: scopes, or a ``require(...)`` of scopes, roles, clients,
    claims and actors (what combines when a batch calls several tools, or any tool may be
    called)."""
    if not isinstance(entry, Requirement):
        return require(entry)
    if entry.any_scopes or entry.audience or entry.acr_values or entry.max_age is not None:
        raise ConfigurationError(
            f"{entry!r}: a tool's require(...) takes scopes, roles, clients and claims; put "
            "any_scopes, audience, acr_values and max_age on the endpoint's path rule"
        )
    return entry


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


async def exchanged_token(
    exchange: TokenExchange,
    *,
    resource: str | Iterable[str] | None = None,
    audience: str | Iterable[str] | None = None,
    scope: str | Iterable[str] | None = None,
) -> ExchangedToken:
    """Inside a tool: the caller's token exchanged for one meant for the downstream API
    ``resource`` (or ``audience``) with ``scope`` (``TokenExchange.token_for`` on the token
    ``get_access_token()`` returns). MCP authorization forbids passing the caller's own
    token on: send this one (``token.headers(method, url)``).

    The authorization server's refusal (``ExchangeRefused``: a target or scope its policy
    does not allow, ...) and its absence (``TemporarilyUnavailable``) become the SDK's
    ``ToolError``, so the client sees a tool error saying why rather than a bare failure.
    """
    caller = get_access_token()
    if caller is None:
        raise ToolError("this tool calls another API on the caller's behalf: it needs a token")
    try:
        return await exchange.token_for(caller, resource=resource, audience=audience, scope=scope)
    except ExchangeRefused as refused:
        raise ToolError(refused.description) from refused
    except TemporarilyUnavailable as failure:
        raise ToolError(f"{failure.description}; try again later") from failure
