"""``require(...)``: what one operation needs from the access token.

One object, three uses: a Starlette endpoint decorator, a FastAPI dependency, and a path
rule on the guard (``OAuthGuard(..., rules={"/admin": require("admin")})``). Every refusal is
answered by the guard in front of the app, so challenges are the same everywhere.
"""

from __future__ import annotations

import functools
import inspect
import math
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, TypeVar, overload

from starlette.requests import HTTPConnection
from starlette.websockets import WebSocket

from oauthguard._asgi.context import context_of
from oauthguard._asgi.endpoints import ProtectedApp, Refusal, connection_of
from oauthguard._asgi.types import Scope
from oauthguard._http.paths import PathTable
from oauthguard._wire.errors import (
    ConfigurationError,
    GuardError,
    InsufficientScope,
    InsufficientUserAuthentication,
    InvalidToken,
    MissingCredentials,
)
from oauthguard._wire.redaction import unexpected
from oauthguard._wire.tokens import AccessToken, is_scope_token, split_scope

E = TypeVar("E", bound=Callable[..., Any])

_METHOD = re.compile(r"[A-Z]+")
NO_IMPLICATIONS: Mapping[str, frozenset[str]] = MappingProxyType({})


def scope_list(name: str, value: str | Iterable[str] | None) -> tuple[str, ...]:
    """A space-separated string or an iterable of scope tokens, in order, without repeats."""
    if value is None:
        return ()
    if isinstance(value, str):
        items: list[Any] = split_scope(value)  # RFC 6749 §3.3: on SP only
    else:
        try:
            items = list(value)
        except TypeError:
            raise ConfigurationError(
                f"{name} must be a string or an iterable of strings, got {type(value).__name__}"
            ) from None
    for item in items:
        if not is_scope_token(item):
            raise ConfigurationError(
                f"{name}: {item!r} is not a valid value (RFC 6749 §3.3: printable ASCII "
                "without space, '\"' or '\\')"
            )
    return tuple(dict.fromkeys(items))


def granted_scopes(scopes: frozenset[str], implies: Mapping[str, frozenset[str]]) -> frozenset[str]:
    """The token's scopes plus every scope they imply (the guard's ``scope_implies``)."""
    if not implies:
        return scopes
    granted = set(scopes)
    for scope in scopes:
        granted.update(implies.get(scope, ()))
    return frozenset(granted)


def check_required_audience(token: AccessToken, audience: str | None) -> None:
    """RFC 8707 §2 / RFC 9068 §4: this route serves ``audience``; the token must name it."""
    if audience is not None and audience not in token.audience:
        raise InvalidToken(f"the token is not meant for {audience} (aud)")


def check_acr(token: AccessToken, acr_values: tuple[str, ...], params: dict[str, str]) -> None:
    """RFC 9470 §3: the ``acr`` of the authentication must be one of ``acr_values``."""
    if not acr_values:
        return
    acr = token.claims.get("acr")
    if not isinstance(acr, str) or acr not in acr_values:
        raise InsufficientUserAuthentication(
            "a stronger authentication is required (acr)", **params
        )


def check_max_age(
    token: AccessToken, max_age: int | None, now: float, params: dict[str, str]
) -> None:
    """RFC 9470 §3: the user authenticated (``auth_time``) at most ``max_age`` seconds ago."""
    if max_age is None:
        return
    auth_time = token.claims.get("auth_time")
    # An int is compared as it is: math.isfinite() cannot convert one beyond float range.
    if (
        isinstance(auth_time, bool)
        or not isinstance(auth_time, (int, float))
        or (isinstance(auth_time, float) and not math.isfinite(auth_time))
        or auth_time < now - max_age
    ):
        raise InsufficientUserAuthentication(
            "a more recent authentication is required (auth_time)", **params
        )


def check_scopes(
    granted: frozenset[str], every: frozenset[str], some: frozenset[str], scope_param: str
) -> None:
    """RFC 6750 §3.1: 403 ``insufficient_scope`` with every scope the operation needs."""
    if every <= granted and (not some or not granted.isdisjoint(some)):
        return
    raise InsufficientScope(f"this operation needs the scopes: {scope_param}", scope=scope_param)


class _DependencySignature:
    """The parameters FastAPI reads (``inspect.signature``) from a ``Requirement``.

    Built on first use, so only apps that use FastAPI import it; ``None`` on the class and
    without FastAPI, so ``inspect.signature`` falls back to the ordinary one.
    """

    def __get__(self, requirement: Requirement | None, owner: type | None = None) -> Any:
        if requirement is None:
            return None
        signature = vars(requirement).get("_signature")
        if signature is None:
            try:
                from oauthguard._asgi.dependency import dependency_signature
            except ImportError:
                return None
            documented = requirement.scopes + requirement.any_scopes
            signature = vars(requirement)["_signature"] = dependency_signature(documented)
        return signature


class Requirement:
    """What an operation needs from the access token; built by ``require(...)``.

    Decorate a Starlette endpoint (``@require("orders:write")``), use it as a FastAPI
    dependency (``Depends(require(...))`` returns the ``AccessToken``), or give it to the
    guard as a path rule.
    """

    __signature__ = _DependencySignature()

    def __init__(
        self,
        scopes: str | Iterable[str] | None = None,
        *,
        any_scopes: str | Iterable[str] | None = None,
        audience: str | None = None,
        acr_values: str | Iterable[str] | None = None,
        max_age: int | None = None,
    ) -> None:
        self.scopes = scope_list("scopes", scopes)
        self.any_scopes = scope_list("any_scopes", any_scopes)
        if audience is not None and (not isinstance(audience, str) or not audience):
            raise ConfigurationError("audience must be the resource identifier (a URL string)")
        self.audience = audience
        self.acr_values = scope_list("acr_values", acr_values)
        if max_age is not None and (
            isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 0
        ):
            raise ConfigurationError("max_age must be a non-negative integer of seconds")
        self.max_age = max_age
        self._every = frozenset(self.scopes)
        self._some = frozenset(self.any_scopes)
        # Built once: a path rule's check names it on every request it refuses.
        self._challenge_scope = " ".join(self.scopes + self.any_scopes)
        self._step_up: dict[str, str] = {}
        self._scope_params: dict[tuple[Requirement | None, tuple[str, ...]], str] = {}
        if self.acr_values:
            self._step_up["acr_values"] = " ".join(self.acr_values)
        if max_age is not None:
            self._step_up["max_age"] = str(max_age)
        # FastAPI awaits a dependency when getattr(dependency, "__call__") is a coroutine
        # function, and runs it in a thread otherwise. The class-level __call__ (what
        # calling this object runs) must stay synchronous to work as a decorator, so the
        # instance names the coroutine FastAPI should see; calls with keywords reach it.
        vars(self)["__call__"] = self._dependency

    @property
    def challenge_scope(self) -> str:
        """Every scope this requirement names, space-separated (the challenge's ``scope``)."""
        return self._challenge_scope

    def __repr__(self) -> str:
        args = [repr(" ".join(self.scopes))] if self.scopes else []
        for name in ("any_scopes", "acr_values"):
            if getattr(self, name):
                args.append(f"{name}={' '.join(getattr(self, name))!r}")
        for name in ("audience", "max_age"):
            if getattr(self, name) is not None:
                args.append(f"{name}={getattr(self, name)!r}")
        return f"require({', '.join(args)})"

    # -- the checks -----------------------------------------------------------------------
    def check(
        self,
        token: AccessToken,
        *,
        now: float,
        implies: Mapping[str, frozenset[str]] = NO_IMPLICATIONS,
        also: Iterable[str] = (),
        scope_param: str | None = None,
    ) -> None:
        """Raise the ``GuardError`` for the first unmet need: audience (401), step-up (401),
        scopes (403). ``also`` adds scopes that must be present (FastAPI security scopes);
        ``scope_param`` is the challenge's list of every scope the operation needs."""
        if self.audience is not None:
            check_required_audience(token, self.audience)
        if self._step_up:  # acr_values or max_age
            check_acr(token, self.acr_values, self._step_up)
            check_max_age(token, self.max_age, now, self._step_up)
        every = self._every.union(also) if also else self._every
        if every or self._some:
            check_scopes(
                granted_scopes(token.scopes, implies) if implies else token.scopes,
                every,
                self._some,
                scope_param or self._challenge_scope,
            )

    def enforce(self, scope: Scope, also: Iterable[str] = ()) -> AccessToken:
        """Check the request's token (``scope["auth"]``, set by the guard); return it.

        Raises the ``GuardError`` the guard answers with, or ``ConfigurationError`` when no
        guard is in front of the app (fail closed: never a pass).
        """
        context = context_of(scope, repr(self))
        also = tuple(also)
        scope_param = self._scope_param(context.rule, also)
        token = scope.get("auth")
        if not isinstance(token, AccessToken):
            raise MissingCredentials(
                "this operation needs an access token",
                **({"scope": scope_param} if scope_param else {}),
            )
        try:
            self.check(
                token,
                now=context.clock(),
                implies=context.implies,
                also=also,
                scope_param=scope_param,
            )
        except GuardError:
            raise
        except Exception as exc:  # fail closed: a 503, never a 500 or a pass
            raise unexpected(exc, str(scope.get("path")), None) from exc
        return token

    def _scope_param(self, rule: Requirement | None, also: tuple[str, ...]) -> str:
        """Every scope a request under ``rule`` needs here: the challenge's ``scope``.
        Built once per rule and ``also`` (both come from the app's configuration)."""
        key = (rule, also)
        param = self._scope_params.get(key)
        if param is None:
            names = (rule.scopes + rule.any_scopes if rule is not None else ()) + also
            param = " ".join(dict.fromkeys(names + self.scopes + self.any_scopes))
            if len(self._scope_params) >= 256:  # bounded, whatever the app does
                self._scope_params.clear()
            self._scope_params[key] = param
        return param

    def refusal(self, scope: Scope) -> Refusal | None:
        """None when the request may proceed, else the ASGI response that refuses it."""
        try:
            self.enforce(scope)
        except GuardError as error:
            return Refusal(context_of(scope, repr(self)).refuse, error)
        return None

    # -- the three uses -------------------------------------------------------------------
    @overload
    def __call__(self, endpoint: E, /) -> E: ...
    @overload
    def __call__(self, **dependencies: Any) -> Awaitable[AccessToken]: ...

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """As a decorator: the protected endpoint. Called by FastAPI: the checked token."""
        if kwargs or len(args) != 1:
            return self._dependency(*args, **kwargs)
        endpoint = args[0]
        if inspect.isfunction(endpoint) or inspect.ismethod(endpoint):
            return self._wrap_endpoint(endpoint)
        if callable(endpoint):
            return ProtectedApp(self, endpoint)
        raise TypeError(f"{self!r} decorates endpoints and ASGI apps, not {endpoint!r}")

    async def _dependency(
        self, connection: HTTPConnection, security_scopes: Any = None, **_: Any
    ) -> AccessToken:
        """The FastAPI dependency: FastAPI's security scopes are required too."""
        return self.enforce(connection.scope, getattr(security_scopes, "scopes", ()))

    def _wrap_endpoint(self, endpoint: E) -> E:
        if inspect.iscoroutinefunction(endpoint):

            @functools.wraps(endpoint)
            async def protected(*args: Any, **kwargs: Any) -> Any:
                connection = connection_of(self, args, kwargs)
                refusal = self.refusal(connection.scope)
                if refusal is None:
                    return await endpoint(*args, **kwargs)
                if isinstance(connection, WebSocket):
                    await refusal(connection.scope, connection.receive, connection.send)
                    return None
                return refusal

            return protected  # type: ignore[return-value]

        @functools.wraps(endpoint)
        def protected_sync(*args: Any, **kwargs: Any) -> Any:
            refusal = self.refusal(connection_of(self, args, kwargs).scope)
            return endpoint(*args, **kwargs) if refusal is None else refusal

        return protected_sync  # type: ignore[return-value]


def require(
    scopes: str | Iterable[str] | None = None,
    *,
    any_scopes: str | Iterable[str] | None = None,
    audience: str | None = None,
    acr_values: str | Iterable[str] | None = None,
    max_age: int | None = None,
) -> Requirement:
    """What an operation needs from the access token.

    ``scopes``: every one of these (a space-separated string or an iterable);
    ``any_scopes``: at least one of these; ``audience``: the token must be meant for this
    resource too (as a path rule it also makes the rule's path belong to that resource);
    ``acr_values`` / ``max_age``: RFC 9470 step-up, judged from the token's ``acr`` and
    ``auth_time``.

    A missing scope is a 403 ``insufficient_scope`` naming every scope the operation needs;
    a wrong audience a 401 ``invalid_token``; a step-up a 401
    ``insufficient_user_authentication`` with ``acr_values`` and/or ``max_age``.
    """
    return Requirement(
        scopes, any_scopes=any_scopes, audience=audience, acr_values=acr_values, max_age=max_age
    )


def build_rules(rules: Mapping[Any, Any] | None) -> PathTable[Requirement]:
    """``{"/admin": require("admin"), ("POST", "/orders"): require("orders:write")}``."""
    if rules is None:
        return PathTable()
    if not isinstance(rules, Mapping):
        raise ConfigurationError("rules must be a dict of path (or (method, path)) to require(...)")
    entries: list[tuple[str | None, str, Requirement]] = []
    for key, requirement in rules.items():
        method, path = key if isinstance(key, tuple) and len(key) == 2 else (None, key)
        if method is not None and (
            not isinstance(method, str) or not _METHOD.fullmatch(method.upper())
        ):
            raise ConfigurationError(f"rules: {method!r} in {key!r} is not an HTTP method")
        if not isinstance(requirement, Requirement):
            raise ConfigurationError(
                f"rules: the value for {key!r} must be require(...), got {requirement!r}"
            )
        entries.append((method, path, requirement))
    return PathTable(entries, "rules")


def build_implications(value: Mapping[str, Iterable[str]] | None) -> dict[str, frozenset[str]]:
    """``scope_implies``: each scope with every scope it implies, followed transitively."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigurationError('scope_implies must be a dict like {"admin": {"read", "write"}}')
    direct: dict[str, tuple[str, ...]] = {}
    for key, implied in value.items():
        names = scope_list("scope_implies", key) if isinstance(key, str) else ()
        if len(names) != 1:
            raise ConfigurationError(f"scope_implies: the key {key!r} is not one scope")
        direct[names[0]] = scope_list(f"scope_implies[{key!r}]", implied)
    closure: dict[str, frozenset[str]] = {}
    for scope in direct:
        seen: set[str] = set()
        pending = list(direct[scope])
        while pending:
            implied = pending.pop()
            if implied not in seen:
                seen.add(implied)
                pending.extend(direct.get(implied, ()))
        closure[scope] = frozenset(seen - {scope})
    return closure
