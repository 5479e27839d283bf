"""The resources one app serves (RFC 9728, RFC 8707), and which one a request's path is for."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from oauthguard._asgi.metadata import metadata_url
from oauthguard._core.adapters import given_or_built
from oauthguard._core.server import ResourceServer
from oauthguard._core.settings import DPoP
from oauthguard._http.paths import PathTable, normalize_prefix
from oauthguard._policy import Requirement
from oauthguard._wire.challenge import Challenger
from oauthguard._wire.errors import ConfigurationError, InvalidToken
from oauthguard._wire.tokens import AccessToken


@dataclass(frozen=True, slots=True)
class ServedResource:
    """One resource: its identifier, the audiences its tokens carry, its challenges."""

    identifier: str
    audiences: frozenset[str]
    challenger: Challenger

    def check(self, token: AccessToken) -> None:
        """RFC 8707 §2 / RFC 9068 §4: the token is meant for the resource of this path."""
        if self.audiences.isdisjoint(token.audience):
            raise InvalidToken(f"the token is not meant for {self.identifier} (aud)")


def resource_paths(
    server: ResourceServer, rules: PathTable[Requirement], challenger: Challenger
) -> tuple[ServedResource, PathTable[ServedResource]]:
    """The default resource (for paths no other resource covers), and each resource at its
    identifier's path. The default resource answers with
    ``challenger``; the others with a copy whose ``resource_metadata`` is their own
    document (RFC 9728 §5.1), so every other setting of the challenge stays the same."""
    default = ServedResource(server.resource, server.resource_audiences, challenger)
    by_identifier = {server.resource: default}
    paths = {_path(server.resource): default}
    for resource in server.resources[1:]:
        own = copy.copy(challenger)
        own.resource_metadata = metadata_url(resource)
        by_identifier[resource] = paths[_path(resource)] = ServedResource(
            resource, frozenset({resource}), own
        )
    # A rule's audience claims the rule's path for that resource too.
    for (method, prefix), rule in rules.items():
        if method is not None or rule.audience is None:
            continue
        served = by_identifier[rule.audience]
        claimed = paths.setdefault(prefix or "/", served)
        if claimed is not served:
            raise ConfigurationError(
                f"rules: {prefix or '/'} needs tokens for {rule.audience}, but it is the path "
                f"of the resource {claimed.identifier}"
            )
    return default, PathTable(((None, path, served) for path, served in paths.items()), "resources")


def _path(resource: str) -> str:
    """The path of ``resource`` as requests are matched on it: decoded, in normal form."""
    return normalize_prefix(urlsplit(resource).path or "/", "resources") or "/"


def guard_server(
    server: ResourceServer | None,
    resource: str | None,
    authorization_servers: Any,
    dpop: DPoP | str | None,
    rules: PathTable[Requirement],
) -> ResourceServer:
    """The guard's server: the one given, or one built from the shorthand arguments. The
    audiences of ``rules`` are resources it serves (their paths need tokens for them)."""
    audiences = [rule.audience for _, rule in rules.items() if rule.audience is not None]
    server = given_or_built(
        "OAuthGuard",
        server,
        resource=resource,
        authorization_servers=authorization_servers,
        dpop=dpop,
        resources=audiences if server is None else None,
    )
    for audience in audiences:
        if audience not in server.resources:
            raise ConfigurationError(
                f"rules: require(audience={audience!r}) names a resource the server does not "
                f"serve; add it to ResourceServer(resources=[...])"
            )
    return server
