"""What the code inside an app needs from the guard while a request runs.

``OAuthGuard`` puts one ``RequestContext`` in the ASGI scope; ``require(...)``, the FastAPI
and MCP integrations read it. It carries the path rule applied, the scope hierarchy, the
clock, the core server, and the one function every refusal goes through; never the guard.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from oauthguard._asgi.types import Receive, Scope, Send
from oauthguard._core.server import ResourceServer
from oauthguard._core.settings import Metadata
from oauthguard._wire.errors import ConfigurationError, GuardError

#: The scope key under which the guard keeps the request's ``RequestContext``.
CONTEXT = "oauthguard"
#: The scope key that marks a request the app refused through the guard (counted once).
REFUSED = "oauthguard.refused"
#: The path the guard matched, where it serves several resources: the one a refusal from
#: inside the app names, though the app rewrote ``path`` (a Litestar mount does).
GUARDED_PATH = "oauthguard.path"

#: Answers a refusal: the challenge of the request's resource, as an HTTP response or a
#: WebSocket denial.
Refuse = Callable[[Scope, Receive, Send, GuardError], Awaitable[None]]
#: The answer to a refusal as status, headers and body, for frameworks that build their own
#: response objects (Django, Litestar): the same challenge ``Refuse`` sends.
Render = Callable[[Scope, GuardError], tuple[int, list[tuple[bytes, bytes]], bytes]]


class RequestContext:
    """One request's view of the guard. ``rule`` is the path rule the guard applied (a
    ``Requirement``) or None; ``implies`` maps each scope to the scopes it implies;
    ``metadata`` is what the guard publishes of the resource."""

    __slots__ = ("clock", "implies", "metadata", "refuse", "render", "rule", "server")

    def __init__(
        self,
        server: ResourceServer,
        rule: Any,
        implies: Mapping[str, frozenset[str]],
        refuse: Refuse,
        render: Render,
        metadata: Metadata,
    ) -> None:
        self.server = server
        self.metadata = metadata
        self.rule = rule
        self.implies = implies
        self.clock: Callable[[], float] = server.clock
        self.refuse = refuse
        self.render = render


def context_of(scope: Scope, what: str) -> RequestContext:
    """The request's context, or ``ConfigurationError`` naming ``what`` needs the guard
    (fail closed: without a guard in front, nothing is checked, so nothing may pass)."""
    context = scope.get(CONTEXT)
    if not isinstance(context, RequestContext):
        raise ConfigurationError(
            f"{what} at {scope.get('path')!r} needs the OAuthGuard middleware in front of the "
            "app; add it with app.add_middleware(OAuthGuard, ...)"
        )
    return context


def route_template(scope: Scope) -> str | None:
    """The route template the framework matched (Starlette's and FastAPI's route, Litestar's
    ``path_template``), never the path itself: a path may hold identifiers."""
    route = getattr(scope.get("route"), "path", None) or scope.get("path_template")
    return route if isinstance(route, str) else None
