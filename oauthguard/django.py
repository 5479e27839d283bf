"""Django integration: ``@token_required(...)`` for views, ``access_token(request)``, and a
middleware that answers a ``GuardError`` a view raises.

Importable only when Django is installed. Serve Django over ASGI with the guard around it
(``asgi.py``)::

    application = OAuthGuard(get_asgi_application(), server)

and in a view::

    from oauthguard.django import access_token, token_required

    @token_required("orders:read")           # sync or async views
    def orders(request):
        return JsonResponse({"by": access_token(request).subject})

A refusal is an ``HttpResponse`` with the status, ``WWW-Authenticate`` challenge and JSON
body of the guard's own refusals.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, Unpack

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpResponse  # type: ignore[import-untyped]

from oauthguard._asgi.types import Scope
from oauthguard._integrations import context_for, refusal_of, requirement_of, text_headers
from oauthguard._policy import Requirement
from oauthguard._policy.requirement import RequirementOptions
from oauthguard._wire.errors import ConfigurationError, GuardError
from oauthguard._wire.tokens import AccessToken

__all__ = ["RefusalMiddleware", "access_token", "refusal_response", "token_required"]

V = TypeVar("V", bound=Callable[..., Any])

SETUP = "in asgi.py, application = OAuthGuard(get_asgi_application(), server)"


def scope_of(request: Any, what: str) -> Scope:
    """The ASGI scope of ``request``, where the guard in front puts the token. A request
    served over WSGI has none (fail closed: no guard checked its token)."""
    scope = getattr(request, "scope", None)
    if not isinstance(scope, dict):
        raise ConfigurationError(
            f"{what} needs Django served over ASGI with OAuthGuard in front: {SETUP}"
        )
    return scope


def access_token(request: Any) -> AccessToken | None:
    """The request's validated ``AccessToken`` (the guard's ``scope["auth"]``); None on the
    guard's ``public_paths``. ``ConfigurationError`` without the guard in front."""
    what = "access_token(request)"
    scope = scope_of(request, what)
    context_for(scope, what, SETUP)
    token = scope.get("auth")
    return token if isinstance(token, AccessToken) else None


def refusal_response(request: Any, error: GuardError) -> Any:
    """The ``HttpResponse`` refusing ``request`` with ``error``, as the guard refuses."""
    scope = scope_of(request, "a refusal")
    status, headers, body = context_for(scope, "a refusal", SETUP).render(scope, error)
    response = HttpResponse(body, status=status)
    for name, value in text_headers(headers).items():
        response.headers[name] = value
    return response


def refusal(requirement: Requirement, request: Any) -> Any:
    """None when the request's token meets ``requirement``, else the refusal."""
    what = f"@token_required({requirement!r})"
    error = refusal_of(requirement, scope_of(request, what), what, SETUP)
    return None if error is None else refusal_response(request, error)


def protect_view(requirement: Requirement, view: V) -> V:
    """``view``, sync or async, run only for a request whose token meets ``requirement``."""
    if iscoroutinefunction(view):

        async def checked_async(request: Any, *args: Any, **kwargs: Any) -> Any:
            refused = refusal(requirement, request)
            return refused if refused is not None else await view(request, *args, **kwargs)

        return functools.wraps(view)(checked_async)  # type: ignore[return-value]

    def checked(request: Any, *args: Any, **kwargs: Any) -> Any:
        refused = refusal(requirement, request)
        return refused if refused is not None else view(request, *args, **kwargs)

    return functools.wraps(view)(checked)  # type: ignore[return-value]


def token_required(
    scopes: str | Iterable[str] | Requirement | None = None,
    **options: Unpack[RequirementOptions],
) -> Callable[[V], V]:
    """A view decorator for what the view needs from the access token: the arguments of
    ``require(...)``, or a ``Requirement``. Sync and async views; for a class-based view,
    ``method_decorator(token_required(...), name="dispatch")``. A request that does not meet
    it gets the guard's refusal (``HttpResponse``); without the guard in front, the view
    raises ``ConfigurationError`` (Django answers 500)."""
    requirement = requirement_of(scopes, options)
    return functools.partial(protect_view, requirement)


class RefusalMiddleware:
    """``MIDDLEWARE = [..., "oauthguard.django.RefusalMiddleware"]``: a ``GuardError`` a
    view raises (``InsufficientScope("only the owner", scope="orders:own")``) is answered as
    the guard answers its own refusals, where Django would answer 500."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)  # Django then awaits what __call__ returns

    def __call__(self, request: Any) -> Any:
        return self.get_response(request)

    def process_exception(self, request: Any, exception: Exception) -> Any:
        """Django's hook for an exception from a view: the refusal, or None (not ours)."""
        return refusal_response(request, exception) if isinstance(exception, GuardError) else None
