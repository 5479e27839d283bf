"""What the Litestar and Django integrations share: the requirement a route names, its check
(failing closed), the request's context (or a clear error saying how to put the guard in
front), and a refusal's headers as the strings those frameworks' response objects take."""

from __future__ import annotations

from collections.abc import Iterable

from oauthguard._asgi.context import CONTEXT, RequestContext
from oauthguard._asgi.types import Headers, Scope
from oauthguard._policy import Requirement
from oauthguard._policy.requirement import RequirementOptions
from oauthguard._wire.errors import ConfigurationError, GuardError
from oauthguard._wire.redaction import unexpected


def requirement_of(
    scopes: str | Iterable[str] | Requirement | None, options: RequirementOptions
) -> Requirement:
    """``require(...)``'s arguments as a ``Requirement``, or the ``Requirement`` given."""
    if not isinstance(scopes, Requirement):
        return Requirement(scopes, **options)
    if any(option is not None for option in options.values()):
        raise ConfigurationError(
            f"give either {scopes!r} or the arguments of require(...), not both"
        )
    return scopes


def context_for(scope: Scope, what: str, setup: str) -> RequestContext:
    """The request's context, or ``ConfigurationError`` saying how to put the guard in front
    (fail closed: without the guard no token was checked, so nothing may pass)."""
    context = scope.get(CONTEXT)
    if not isinstance(context, RequestContext):
        raise ConfigurationError(
            f"{what} at {scope.get('path')!r} needs OAuthGuard in front of the app: {setup}"
        )
    return context


def refusal_of(requirement: Requirement, scope: Scope, what: str, setup: str) -> GuardError | None:
    """None when the request's token meets ``requirement``, else the ``GuardError`` that
    refuses it: a failure while checking is a 503 (fail closed, never a pass or a 500).
    ``ConfigurationError`` without the guard in front."""
    context_for(scope, what, setup)
    try:
        requirement.enforce(scope)
    except GuardError as error:
        return error
    except Exception as exc:
        return unexpected(exc, scope["path"], None)
    return None


def text_headers(headers: Headers) -> dict[str, str]:
    """A refusal's headers (each name once) as strings. RFC 9110 §5.5: a field value is
    octets; latin-1 maps each to one character, so the bytes sent are the guard's own."""
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in headers}
