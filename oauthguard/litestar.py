"""Litestar integration: ``requires(...)`` as a route guard, and the exception handler that
answers a refusal with the guard's own response.

Importable only when Litestar is installed. Put the guard around the whole app, so it also
serves the RFC 9728 metadata and sees the lifespan::

    from oauthguard import GuardError
    from oauthguard.litestar import refusal_response, requires

    @get("/orders", guards=[requires("orders:read")])
    async def orders(request: Request[AuthenticatedUser, AccessToken, State]) -> ...:
        return {"by": request.auth.subject}     # Litestar reads scope["auth"] natively

    answers = {GuardError: refusal_response}
    app = OAuthGuard(Litestar([orders], exception_handlers=answers), server)

Litestar turns every exception a guard or a handler raises into a response of its own, so
the guard in front never sees a ``GuardError``: ``refusal_response``, as the app's exception
handler for it, answers with the same status, ``WWW-Authenticate`` challenge and JSON body as
the guard's own refusals. (A mapping of the app's own, not a shared one: Litestar and its
plugins add to the mapping they are given.)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, Unpack

from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.exceptions import WebSocketException
from litestar.handlers import BaseRouteHandler
from litestar.status_codes import WS_1008_POLICY_VIOLATION

from oauthguard._integrations import context_for, refusal_of, requirement_of, text_headers
from oauthguard._policy import Requirement
from oauthguard._policy.requirement import RequirementOptions
from oauthguard._wire.errors import ConfigurationError, GuardError

__all__ = ["RequirementGuard", "refusal_response", "requires"]

logger = logging.getLogger("oauthguard")

HANDLERS = "exception_handlers={GuardError: oauthguard.litestar.refusal_response}"
SETUP = f"wrap it, OAuthGuard(Litestar(..., {HANDLERS}), server)"


def refusal_response(request: Request[Any, Any, Any], error: Exception) -> Response[bytes]:
    """A Litestar exception handler: a ``GuardError`` (from ``requires(...)``, or raised by a
    handler) becomes the guard's refusal: its status, ``WWW-Authenticate`` and JSON body."""
    if not isinstance(error, GuardError):  # registered for GuardError only
        raise error
    scope: Any = request.scope  # Litestar's scope types are TypedDicts; the guard's a mapping
    status, headers, body = context_for(scope, "a refusal", SETUP).render(scope, error)
    return Response(body, status_code=status, headers=text_headers(headers))


class RequirementGuard:
    """A Litestar guard that checks the request's token against one ``Requirement``."""

    __slots__ = ("requirement",)

    def __init__(self, requirement: Requirement) -> None:
        self.requirement = requirement

    def __repr__(self) -> str:
        return f"requires({self.requirement!r})"

    async def __call__(
        self, connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
    ) -> None:
        scope: Any = connection.scope
        try:
            error = refusal_of(self.requirement, scope, repr(self), SETUP)
        except ConfigurationError as configuration:
            # Litestar logs a guard's exception only in debug mode: say it here.
            logger.error("%s", configuration)
            raise
        if error is None:
            return
        if scope["type"] == "websocket":
            raise socket_refusal(scope, error) from error
        if not answers_refusals(handler, error):
            raise missing_handlers(scope, self) from error
        raise error  # RFC 6750 §3.1: answered by refusal_response, with the challenge


def socket_refusal(scope: Any, error: GuardError) -> WebSocketException:
    """Litestar answers an error on a WebSocket only with a close, never with the HTTP
    response that would carry the challenge: close the handshake with 1008, policy violation
    (RFC 6455 §7.4.1), as the guard does on servers without the denial response extension."""
    logger.info(
        "refused WS %r: %s; see %s",
        scope["path"],
        error.description or "no credentials",
        error.docs,
    )
    return WebSocketException(detail=error.error or "unauthorized", code=WS_1008_POLICY_VIOLATION)


def answers_refusals(handler: BaseRouteHandler, error: GuardError) -> bool:
    """Some layer of the route maps ``error``'s class, or a parent up to ``GuardError``, to
    an exception handler: without one Litestar answers 500, and says nothing outside debug."""
    handlers = handler.resolve_exception_handlers()
    return any(cls in handlers for cls in type(error).__mro__ if issubclass(cls, GuardError))


def missing_handlers(scope: Any, guard: RequirementGuard) -> ConfigurationError:
    """The error (logged, and raised: fail closed) of a refusal Litestar cannot answer."""
    error = ConfigurationError(
        f"{guard!r} at {scope['path']!r} refused a request, but no exception handler answers "
        f"GuardError; give the app {HANDLERS}"
    )
    logger.error("%s", error)
    return error


def requires(
    scopes: str | Iterable[str] | Requirement | None = None,
    **options: Unpack[RequirementOptions],
) -> RequirementGuard:
    """A Litestar guard for what a route needs from the access token: the arguments of
    ``require(...)``, or a ``Requirement``. ``guards=[requires("orders:read")]`` on an app,
    router, controller or handler.

    Over HTTP a refusal is the guard's own (with ``refusal_response`` on the app); on a
    WebSocket the handshake is closed with 1008 (protect WebSocket paths with the guard's
    ``rules=`` for a refusal that carries the challenge).
    """
    return RequirementGuard(requirement_of(scopes, options))
