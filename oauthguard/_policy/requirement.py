"""``Requirement``: what one operation needs from the access token, and the path rules."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypedDict, TypeVar, Unpack, overload

from starlette.requests import HTTPConnection
from starlette.websockets import WebSocket

from oauthguard._asgi.context import context_of
from oauthguard._asgi.endpoints import ProtectedApp, Refusal, connection_of
from oauthguard._asgi.types import Scope
from oauthguard._policy.privileges import Privileges, build_privileges
from oauthguard._policy.scopes import NO_IMPLICATIONS, granted_scopes, scope_list, scopes_granted
from oauthguard._policy.stepup import check_acr, check_max_age, check_required_audience
from oauthguard._wire.errors import (
    ConfigurationError,
    GuardError,
    InsufficientScope,
    MissingCredentials,
)
from oauthguard._wire.redaction import unexpected
from oauthguard._wire.tokens import AccessToken

E = TypeVar("E", bound=Callable[..., Any])


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


class RequirementOptions(TypedDict, total=False):
    """The keyword arguments of ``require(...)`` (and of the Django and Litestar idioms that
    take the same), as its docstring describes them."""

    any_scopes: str | Iterable[str] | None
    audience: str | None
    acr_values: str | Iterable[str] | None
    max_age: int | None
    roles: str | Iterable[str] | None
    clients: str | Iterable[str] | None
    claims: Mapping[str, Any] | None
    actors: str | Iterable[str] | None


def _unknown_options(names: list[str]) -> str:
    known = sorted(RequirementOptions.__optional_keys__)
    hint = "" if names != ["scope"] else " (the scopes are the first argument, or scopes=)"
    return (
        f"require(...) takes no {', '.join(names)}{hint}; its keyword arguments are "
        f"scopes, {', '.join(known)}"
    )


class Requirement:
    """What an operation needs from the access token; built by ``require(...)``.

    Decorate a Starlette endpoint (``@require("orders:write")``), use it as a FastAPI
    dependency (``Depends(require(...))`` returns the ``AccessToken``), or give it to the
    guard as a path rule.
    """

    __signature__ = _DependencySignature()

    def __init__(
        self, scopes: str | Iterable[str] | None = None, **options: Unpack[RequirementOptions]
    ) -> None:
        unknown = options.keys() - RequirementOptions.__optional_keys__
        if unknown:
            raise ConfigurationError(_unknown_options(sorted(unknown)))
        any_scopes, audience = options.get("any_scopes"), options.get("audience")
        acr_values, max_age = options.get("acr_values"), options.get("max_age")
        self.scopes = scope_list("scopes", scopes)
        self.any_scopes = scope_list("any_scopes", any_scopes)
        if audience is not None and (not isinstance(audience, str) or not audience):
            raise ConfigurationError(
                f"require(audience=...) must be the resource identifier (a URL string, like "
                f"'https://api.example.com/billing'), got {audience!r}"
            )
        self.audience = audience
        self.acr_values = scope_list("acr_values", acr_values)
        if max_age is not None and (
            isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 0
        ):
            raise ConfigurationError(
                f"require(max_age=...) must be a non-negative integer of seconds (RFC 9470 "
                f"max_age, like 300), got {max_age!r}"
            )
        self.max_age = max_age
        self._privileges = build_privileges(
            options.get("roles"),
            options.get("clients"),
            options.get("claims"),
            options.get("actors"),
        )
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

    @property
    def roles(self) -> tuple[str, ...]:
        """The roles the token must have, every one."""
        return self._privileges.roles if self._privileges is not None else ()

    @property
    def clients(self) -> tuple[str, ...]:
        """The clients the token may come from, any one (empty: any client)."""
        sets = self._privileges.client_sets if self._privileges is not None else ()
        return sets[0] if len(sets) == 1 else tuple(c for s in sets for c in s)

    @property
    def actors(self) -> tuple[str, ...] | None:
        """The actors that may act for the token's subject (None: not restricted)."""
        sets = self._privileges.actor_sets if self._privileges is not None else ()
        if not sets:
            return None
        return sets[0] if len(sets) == 1 else tuple(a for s in sets for a in s)

    @property
    def claims(self) -> dict[str, tuple[Any, ...]]:
        """Each claim the token must hold and the values it must hold, every one."""
        needs = self._privileges.claims if self._privileges is not None else ()
        return {need.name: need.values for need in needs}

    @property
    def needs_claims(self) -> bool:
        """Whether meeting this requirement depends on claims beyond scopes, roles and client
        (``claims=``, or ``actors=``, which read the ``act`` claim)."""
        privileges = self._privileges
        return privileges is not None and bool(privileges.claims or privileges.actor_sets)

    def __repr__(self) -> str:
        args = [repr(" ".join(self.scopes))] if self.scopes else []
        for name in ("any_scopes", "acr_values"):
            if getattr(self, name):
                args.append(f"{name}={' '.join(getattr(self, name))!r}")
        for name in ("audience", "max_age"):
            if getattr(self, name) is not None:
                args.append(f"{name}={getattr(self, name)!r}")
        for name in ("roles", "clients", "claims"):
            if getattr(self, name):
                args.append(f"{name}={getattr(self, name)!r}")
        if self.actors is not None:
            args.append(f"actors={self.actors!r}")
        return f"require({', '.join(args)})"

    @classmethod
    def all_of(cls, parts: Iterable[Requirement]) -> Requirement:
        """What meeting every one of ``parts`` takes: their scopes, roles, clients and
        claims (the MCP tools a request calls). ``ConfigurationError`` for a part that
        needs anything else (any_scopes, audience, step-up): those do not combine here."""
        parts = list(parts)
        if any(p.any_scopes or p.audience or p.acr_values or p.max_age is not None for p in parts):
            raise ConfigurationError(
                "require(...) entries combined (MCP tool_scopes): only scopes, roles, clients "
                "and claims combine; put any_scopes, audience, acr_values and max_age on a path "
                "rule instead"
            )
        combined = cls(list(dict.fromkeys(s for part in parts for s in part.scopes)))
        combined._privileges = Privileges.merged(part._privileges for part in parts)
        return combined

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
        """Raise the ``GuardError`` for the first unmet need, in this order:

        1. the audience (401 ``invalid_token``): the token is not for this resource at all;
        2. roles, clients, claims (403 ``insufficient_scope``): no token the client can ask
           for changes them, so they come before a step-up the user would go through in
           vain; the challenge names no ``scope`` unless scopes are missing too;
        3. step-up, ``acr_values`` / ``max_age`` (401 ``insufficient_user_authentication``);
        4. scopes (403 ``insufficient_scope`` naming them).

        ``also`` adds scopes that must be present (FastAPI security scopes); ``scope_param``
        is the challenge's list of every scope the operation needs."""
        if self.audience is not None:
            check_required_audience(token, self.audience)
        every = self._every.union(also) if also else self._every
        scopes_met = not (every or self._some) or scopes_granted(
            granted_scopes(token.scopes, implies) if implies else token.scopes, every, self._some
        )
        privileges = self._privileges
        if privileges is not None and not privileges.met(token):
            misses = privileges.misses(token)
            if misses:
                raise self._insufficient(misses, scopes_met, scope_param)
        if self._step_up:  # acr_values or max_age
            check_acr(token, self.acr_values, self._step_up)
            check_max_age(token, self.max_age, now, self._step_up)
        if not scopes_met:
            param = scope_param or self._challenge_scope
            # RFC 6750 §3.1: insufficient_scope, with the scopes the request needs.
            raise InsufficientScope(f"this operation needs the scopes: {param}", scope=param)

    def _insufficient(
        self, misses: list[str], scopes_met: bool, scope_param: str | None
    ) -> InsufficientScope:
        """The 403 for roles, clients or claims the token lacks, and for its missing scopes
        unless ``scopes_met`` (then the challenge names them)."""
        if scopes_met:
            # RFC 6750 §3.1: "higher privileges than provided by the access token"; scope
            # is a MAY, and no scope grants these: an empty one keeps the rule's out.
            return InsufficientScope("; ".join(misses), scope="")
        param = scope_param or self._challenge_scope
        needs = f"this operation needs the scopes: {param}"
        return InsufficientScope("; ".join((needs, *misses)), scope=param)

    def met_by(self, token: AccessToken, implies: Mapping[str, frozenset[str]]) -> bool:
        """Whether ``token`` has the scopes, roles, client and claims this needs (not its
        audience or step-up)."""
        if (self._every or self._some) and not scopes_granted(
            granted_scopes(token.scopes, implies), self._every, self._some
        ):
            return False
        return self._privileges is None or self._privileges.met(token)

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
    scopes: str | Iterable[str] | None = None, **options: Unpack[RequirementOptions]
) -> Requirement:
    """What an operation needs from the access token.

    ``scopes``: every one of these (a space-separated string or an iterable);
    ``any_scopes``: at least one of these; ``audience``: the token must be meant for this
    resource too (as a path rule it also makes the rule's path belong to that resource);
    ``acr_values`` / ``max_age``: RFC 9470 step-up, judged from the token's ``acr`` and
    ``auth_time``.

    ``roles``: the token has every one of these roles (``AccessToken.roles``); ``clients``:
    the token's client (``AccessToken.client_id``, from ``client_id``, ``azp``, ``cid`` or
    ``appid``) is one of these. A string is one role or client (without spaces); give
    several as a list. ``claims``: a dict of claim name to value; each claim equals the
    value, or, when the claim is an array, has it as an item. A list of values means the
    claim holds every one. Values are JSON strings, numbers and booleans, compared by type
    and value: ``True`` never equals ``1``, ``"1"`` never equals ``1`` (``2`` equals
    ``2.0``: JSON has one number type). A claim name is top-level; a dotted name is a path
    into nested objects (``"realm_access.roles"``); a name holding ``://`` (Auth0's
    namespaced claims) is literal.

    A missing scope is a 403 ``insufficient_scope`` naming every scope the operation needs;
    a wrong audience a 401 ``invalid_token``; a step-up a 401
    ``insufficient_user_authentication`` with ``acr_values`` and/or ``max_age``. A missing
    role, client or claim is a 403 ``insufficient_scope`` too (RFC 6750 §3.1: "the request
    requires higher privileges than provided by the access token") whose
    ``error_description`` names what is missing, and whose challenge has no ``scope``
    (a MAY there) unless scopes are missing as well: no scope a client could request grants
    a role or changes its client, so a client that re-authorizes on ``insufficient_scope``
    has nothing to ask for. These are checked before step-up, which cannot grant them.

    ``actors``: who may act for the subject of a delegated token (RFC 8693 §4.1: the
    ``sub`` of the outermost ``act``, ``AccessToken.actor``; the earlier actors nested in it
    are not judged). A token without ``act`` (its subject acting itself) passes;
    ``actors=()`` refuses every delegated token. A refused actor is a 403
    ``insufficient_scope`` like a role.
    """
    return Requirement(scopes, **options)
