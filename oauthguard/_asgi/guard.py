"""``OAuthGuard``: the pure-ASGI adapter of a ``ResourceServer``. Wiring only."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from oauthguard._asgi.context import (
    CONTEXT,
    GUARDED_PATH,
    REFUSED,
    RequestContext,
    route_template,
)
from oauthguard._asgi.endpoints import answer_refusals
from oauthguard._asgi.metadata import MetadataEndpoint, build_document, metadata_path, metadata_url
from oauthguard._asgi.readiness import ReadinessEndpoint
from oauthguard._asgi.readiness import readiness_path as readiness_path_of
from oauthguard._asgi.resources import ServedResource, guard_server, resource_paths
from oauthguard._asgi.types import (
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    send_refusal,
    sending_nonce,
)
from oauthguard._core.issuer import IssuerEntry
from oauthguard._core.server import ResourceServer
from oauthguard._core.settings import DPoP, Issuer, Metadata
from oauthguard._dpop.htu import request_uri
from oauthguard._http.paths import (
    NormalPaths,
    check_public_paths,
    method_problem,
    routed_path,
)
from oauthguard._policy import Requirement, build_implications, build_rules
from oauthguard._telemetry import TELEMETRY
from oauthguard._wire.challenge import Challenger
from oauthguard._wire.config import settings_group
from oauthguard._wire.credentials import Credentials
from oauthguard._wire.errors import GuardError, InvalidRequest, StartupError
from oauthguard._wire.redaction import token_digest, unexpected
from oauthguard._wire.tokens import AccessToken, AnonymousUser

logger = logging.getLogger("oauthguard")

#: Any ASGI app, whatever its scope type says (Litestar's is a TypedDict).
AnyASGIApp = Callable[..., Awaitable[None]]


class OAuthGuard:
    """Makes an ASGI app an OAuth 2 resource server.

    Every HTTP request and WebSocket connection outside ``public_paths`` needs a valid
    access token; refused ones get the RFC 6750 / RFC 9449 challenge. The RFC 9728
    protected-resource metadata is served at its well-known URL. ``request.auth`` is the
    validated ``AccessToken`` and ``request.user`` the user built for it. A request whose
    path is not in normal form (dot or empty segments, an encoded ``/``, ...) is refused
    with 400 before anything is matched: the app could read it as another path.

    ``server`` is the ``ResourceServer`` that checks tokens; for the common case give
    ``resource``, ``authorization_servers`` and ``dpop`` instead and the guard builds one.
    ``rules`` maps path prefixes (or ``(method, path)``) to ``require(...)``;
    ``public_paths`` are exact paths, or prefixes ending in ``*`` (``"/docs/*"``; a prefix
    may end inside a segment: ``"/docs*"`` covers ``/docsearch`` too), that need no token;
    ``scope_implies`` lets broader scopes satisfy narrower ones (``{"admin": {"read"}}``);
    ``metadata`` (``Metadata``) is what the metadata document and challenges say.
    ``readiness_path`` (``"/ready"``) serves a readiness check for an orchestrator, with no
    token: 200 while ``ResourceServer.ready()`` (every issuer's keys in hand, the
    introspection endpoint not paused), else 503; its body never names the configuration.

    On ASGI lifespan startup the issuers' keys are fetched; a ``StartupError``
    (``JWT(require_keys_at_startup=True)``) is sent as ``lifespan.startup.failed``, which
    servers treat as fatal whatever their lifespan mode (uvicorn exits with status 3).
    """

    def __init__(
        self,
        app: AnyASGIApp,
        server: ResourceServer | None = None,
        *,
        resource: str | None = None,
        authorization_servers: str | Issuer | Iterable[IssuerEntry] | None = None,
        dpop: DPoP | str | None = None,
        rules: Mapping[str | tuple[str, str], Requirement] | None = None,
        public_paths: Iterable[str] = (),
        scope_implies: Mapping[str, Iterable[str]] | None = None,
        metadata: Metadata | None = None,
        readiness_path: str | None = None,
    ) -> None:
        self.app: ASGIApp = app
        self.rules = build_rules(rules)
        self._has_rules = bool(self.rules)  # read on every request: no __bool__ call then
        self._normal_paths = NormalPaths()
        self.server = server = guard_server(
            server, resource, authorization_servers, dpop, self.rules
        )
        self.metadata: Metadata = settings_group("metadata", metadata, Metadata)
        self.implies = build_implications(scope_implies)
        public = check_public_paths(public_paths)
        self._public_exact = frozenset(p for p in public if not p.endswith("*"))
        self._public_prefixes = tuple(p[:-1] for p in public if p.endswith("*"))
        self._any_public = bool(public)
        #: The app answers a GuardError itself: the guard need not watch what it sends.
        self._app_answers_refusals = answer_refusals(app)
        dpop_settings = server.dpop
        self.challenger = Challenger(
            metadata_url(server.resource),
            realm=self.metadata.realm,
            dpop_algs=dpop_settings.algorithms if dpop_settings.mode != "disabled" else (),
            bearer=dpop_settings.mode != "required",
        )
        self.documents: dict[str, ASGIApp] = {
            metadata_path(resource): MetadataEndpoint(self._document(resource))
            for resource in server.resources
        }
        self._ready_at = ready_at = readiness_path_of(readiness_path, set(self.documents))
        if ready_at is not None:  # served like a document: no lookup of its own per request
            self.documents[ready_at] = ReadinessEndpoint(server)
        self._default, self.served = resource_paths(server, self.rules, self.challenger)
        self._several_resources = len(server.resources) > 1
        # One context per rule, built once: what require(...) and integrations read.
        self._contexts: dict[Requirement | None, RequestContext] = {
            rule: RequestContext(
                server, rule, self.implies, self.refuse, self.render_for_app, self.metadata
            )
            for rule in (None, *(rule for _, rule in self.rules.items()))
        }

    def _document(self, resource: str) -> dict[str, Any]:
        server, dpop = self.server, self.server.dpop
        return build_document(
            resource,
            {
                "authorization_servers": [issuer.url for issuer in server.issuers],
                **self.metadata.document_fields(),
                "bearer_methods_supported": ["header"],
                # RFC 9728 §2 (fields defined by RFC 9449).
                "dpop_signing_alg_values_supported": dpop.algorithms
                if dpop.mode != "disabled"
                else None,
                "dpop_bound_access_tokens_required": dpop.mode == "required",
            },
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        root_path = scope.get("root_path")
        # Before anything is matched: a path (or a method, where rules name methods) that the
        # app may read otherwise than the guard would match it is refused (RFC 6750 §3.1).
        raw_path = scope.get("raw_path")
        problem = (
            None
            if self._normal_paths.get(path) == (raw_path, root_path)
            else self._normal_paths.problem(path, raw_path, root_path)
        )
        if problem is None and self.rules.by_method:
            problem = method_problem(scope.get("method"))
        if problem is not None:
            error = InvalidRequest(problem)
            await self.refuse_request(scope, receive, send, error, None, None)
            return
        endpoint = self.documents.get(path)
        if endpoint is not None and kind == "http":
            await endpoint(scope, receive, send)
            return
        routed = routed_path(path, root_path) if root_path else path
        if root_path and routed == self._ready_at and kind == "http":  # as the app routes it
            await self.documents[routed](scope, receive, send)
            return
        rule = self.rule_for(scope.get("method"), path, routed) if self._has_rules else None
        scope[CONTEXT] = self._contexts[rule]
        if self._several_resources:
            scope[GUARDED_PATH] = path
        if self._any_public and self.is_public(routed):
            scope["auth"], scope["user"] = None, AnonymousUser()
            await self.call_app(scope, receive, send)
            return
        server, credentials = self.server, None
        try:
            credentials = server.credentials(scope["headers"], scope.get("query_string", b""))
            # A WebSocket handshake is a GET (RFC 6455 §4.1); htu only where a proof is.
            htu = (
                request_uri(scope, server.dpop.networks, server.dpop.public_origin)
                if credentials.dpop_proofs
                else ""
            )
            entry = server.cached_bearer(credentials)
            nonce = None
            if entry is None:
                entry, nonce = await server.check(credentials, scope.get("method", "GET"), htu)
            token, user = entry.token, entry.user
            if rule is not None or self._several_resources:
                self.check_route(token, path, rule)
        except GuardError as error:
            await self.refuse_request(scope, receive, send, error, credentials, rule)
            return
        except Exception as exc:
            # Fail closed: a bug or an unexpected failure never lets a request through.
            await self.refuse_request(
                scope, receive, send, unexpected(exc, path, credentials), credentials, None
            )
            return
        scope["auth"], scope["user"] = token, user
        if nonce is not None and kind == "http":
            send = sending_nonce(send, nonce)
        # call_app, inline: one coroutine fewer on every request.
        started = False
        if self._app_answers_refusals:
            tracked = send  # a GuardError it raises is answered inside, or after it started
        else:

            def tracked(message: Message) -> Awaitable[None]:
                nonlocal started
                started = True
                return send(message)  # awaited by the app: no coroutine of ours per message

        try:
            await self.app(scope, receive, tracked)
        except GuardError as error:
            if started or self._app_answers_refusals:
                raise
            await self.refuse(scope, receive, send, error)
        finally:
            if TELEMETRY.metrics is not None and REFUSED not in scope:
                TELEMETRY.metrics.accepted(token.scheme, token.issuer, route_template(scope))

    def rule_for(self, method: str | None, path: str, routed: str) -> Requirement | None:
        """The path rule of a request. Rules name the paths the app routes (``routed``,
        without the ``root_path``), so the rule for the routed path wins; a rule for the full
        path (``protect()`` makes one from the resource URL) applies where none covers it."""
        if routed != path:
            rule = self.rules.match(method, routed)
            if rule is not None:
                return rule
        return self.rules.match(method, path)

    def is_public(self, path: str) -> bool:
        """``path`` (the routed path, without the ``root_path``, in normal form) is in
        ``public_paths``."""
        return path in self._public_exact or path.startswith(self._public_prefixes)

    def check_route(self, token: AccessToken, path: str, rule: Requirement | None) -> None:
        """The audience of the path's resource (with several), then the path rule."""
        if self._several_resources:
            (self.served.match(None, path) or self._default).check(token)
        if rule is not None:
            rule.check(token, now=self.server.clock(), implies=self.implies)

    async def call_app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app. A ``GuardError`` it raises before responding (a FastAPI
        ``Depends(require(...))``, or one raised by hand) is answered like the guard's own."""
        if self._app_answers_refusals:  # as on the inlined path in __call__
            await self.app(scope, receive, send)
            return
        started = False

        def send_and_track(message: Message) -> Awaitable[None]:
            nonlocal started
            started = True
            return send(message)  # awaited by the app: no coroutine of our own per message

        try:
            await self.app(scope, receive, send_and_track)
        except GuardError as error:
            if started:
                raise
            await self.refuse(scope, receive, send, error)

    async def refuse_request(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        error: GuardError,
        credentials: Credentials | None,
        rule: Requirement | None,
    ) -> None:
        """A refusal by the guard itself: logged with the token's digest."""
        if credentials is not None:
            # %r: the path is the client's, and must not forge log lines.
            logger.info(
                "refused %s %r: %s (token sha256:%s)%s; see %s",
                scope.get("method", "WS"),
                scope["path"],
                error.description,
                token_digest(credentials.token),
                f"; {error.detail}" if error.detail else "",
                error.docs,
            )
        else:
            logger.info(
                "refused %s %r: %s; see %s",
                scope.get("method", "WS"),
                scope["path"],
                error.description or "no credentials",
                error.docs,
            )
        scheme = error.scheme or (credentials.scheme if credentials is not None else None)
        if TELEMETRY.metrics is not None:
            used = credentials.scheme if credentials is not None else None
            TELEMETRY.metrics.refused(error.error, used, None)
        challenge_scope = rule.challenge_scope if rule is not None else None
        await self._answer(scope, receive, send, error, scheme, challenge_scope)

    async def refuse(self, scope: Scope, receive: Receive, send: Send, error: GuardError) -> None:
        """Every refusal from inside the app (``require(...)``, an integration, a
        ``GuardError`` raised by hand): the challenge of the scheme the token came with."""
        status, headers, body = self.render_for_app(scope, error)
        await send_refusal(scope, receive, send, status, headers, body)

    def render(
        self, scope: Scope, error: GuardError, scheme: str | None, challenge_scope: str | None
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Status, headers (``WWW-Authenticate`` for the path's resource) and JSON body of
        a refusal: the one place a refusal's answer is made."""
        path = scope.get(GUARDED_PATH) or scope["path"]
        served: ServedResource = self.served.match(None, path) or self._default
        return served.challenger.response(error, scheme, challenge_scope)

    def render_for_app(
        self, scope: Scope, error: GuardError
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """``render`` for a refusal from inside the app: the scheme the token came with."""
        token = scope.get("auth")
        used = token.scheme if isinstance(token, AccessToken) else None
        scheme = error.scheme or used
        if TELEMETRY.metrics is not None and REFUSED not in scope:
            TELEMETRY.metrics.refused(error.error, used, route_template(scope))
        scope[REFUSED] = True
        logger.info(
            "refused %s %r: %s; see %s",
            scope.get("method", "WS"),
            scope["path"],
            error.description or "no credentials",
            error.docs,
        )
        return self.render(scope, error, scheme, None)

    async def _answer(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        error: GuardError,
        scheme: str | None,
        challenge_scope: str | None,
    ) -> None:
        status, headers, body = self.render(scope, error, scheme, challenge_scope)
        await send_refusal(scope, receive, send, status, headers, body)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Keys fetched at startup, before the app's own startup; the server's HTTP client
        closed once the app has shut down. A ``StartupError`` is ``lifespan.startup.failed``
        sent here: raised into the app's lifespan, it would be read by uvicorn's default
        ``lifespan="auto"`` as lifespan being unsupported, and the server would serve."""
        first = await receive()
        if first["type"] == "lifespan.startup":
            try:
                await self.server.warm()
            except StartupError as exc:
                logger.error("%s", exc)
                await self.server.aclose()
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
        given: list[Message] = [first]

        async def receive_after_startup() -> Any:
            return given.pop() if given else await receive()

        async def send_and_close(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                TELEMETRY.refresh()  # an SDK the app's own startup configured
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                await self.server.aclose()
            await send(message)

        await self.app(scope, receive_after_startup, send_and_close)
