"""Guards for tests, from one flat set of options.

Each test names only the settings it is about; this sorts them into the groups the library
takes (``ResourceServer``, ``JWT``, ``DPoP``, ``Limits``, ``Metadata``, ``Issuer``) and builds
the guard with them, so every test goes through the public API.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from oauthguard import (
    JWT,
    DPoP,
    Introspection,
    Issuer,
    Limits,
    Metadata,
    OAuthGuard,
    ResourceServer,
)

_SERVER = (
    "resource",
    "authorization_servers",
    "audiences",
    "resources",
    "verifier",
    "introspection",
    "http_client",
    "clock",
    "user_factory",
)
_JWT = {
    "algorithms": "algorithms",
    "leeway": "leeway",
    "strict_typ": "strict_typ",
    "scopes_claims": "scopes_claims",
    "roles_claims": "roles_claims",
    "jwks_cache_ttl": "keys_ttl",
    "jwks_refresh_cooldown": "keys_refresh_cooldown",
    "jwks_max_stale": "keys_max_stale",
    "require_keys_at_startup": "require_keys_at_startup",
}
_DPOP = {
    "dpop": "mode",
    "dpop_algorithms": "algorithms",
    "dpop_max_age": "max_age",
    "dpop_nonce": "nonces",
    "replay_store": "replay_store",
    "trusted_proxies": "trusted_proxies",
    "public_origin": "public_origin",
}
_LIMITS = {
    "max_token_bytes": "max_token_bytes",
    "token_cache_size": "token_cache_size",
    "http_timeout": "http_timeout",
}
_METADATA = ("scopes_supported", "resource_name", "resource_documentation", "realm")
_GUARD = ("rules", "public_paths", "scope_implies", "readiness_path")


def _group(options: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    return {names[key]: options.pop(key) for key in list(options) if key in names}


def server_options(options: dict[str, Any]) -> dict[str, Any]:
    """The ``ResourceServer`` keywords for flat ``options`` (consumed from the dict)."""
    jwt = _group(options, _JWT)
    dpop = _group(options, _DPOP)
    limits = _group(options, _LIMITS)
    jwks_uri = options.pop("jwks_uri", None)
    token_format = options.pop("token_format", None)
    server = {key: options.pop(key) for key in _SERVER if key in options}
    if jwks_uri is not None:
        issuers = server["authorization_servers"]
        url = issuers if isinstance(issuers, str) else next(iter(issuers))
        server["authorization_servers"] = [Issuer(url, jwks_uri=jwks_uri)]
    introspection = server.get("introspection")
    if token_format is not None and isinstance(introspection, Introspection):
        server["introspection"] = dataclasses.replace(introspection, token_format=token_format)
    if jwt:
        server["jwt"] = JWT(**jwt)
    if dpop:
        server["dpop"] = DPoP(**dpop)
    if limits:
        server["limits"] = Limits(**limits)
    return server


def build_guard(app: Any, **options: Any) -> OAuthGuard:
    """``OAuthGuard(app, ...)`` from flat options (see the module's docstring)."""
    metadata = {key: options.pop(key) for key in _METADATA if key in options}
    guard = {key: options.pop(key) for key in _GUARD if key in options}
    rules = guard.get("rules")
    values = rules.values() if isinstance(rules, dict) else ()
    audiences = [a for rule in values if (a := getattr(rule, "audience", None)) is not None]
    server = server_options(options)
    if audiences:
        others = server.get("resources", ())
        others = [others] if isinstance(others, str) else list(others)
        server["resources"] = others + [a for a in audiences if a not in others]
    if options:
        raise TypeError(f"unknown guard options: {sorted(options)}")
    if metadata:
        guard["metadata"] = Metadata(**metadata)
    return OAuthGuard(app, ResourceServer(**server), **guard)
