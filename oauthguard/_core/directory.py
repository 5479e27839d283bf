"""The ``IssuerDirectory`` of a resource server, built from its ``Issuer`` settings."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import cast

import httpx

from oauthguard._core.issuer import Issuer
from oauthguard._core.settings import JWT, Limits
from oauthguard._verify.claims import claim_path
from oauthguard._verify.discovery import AuthorizationServers, Source
from oauthguard._verify.keys import KeySet
from oauthguard._verify.trust import (
    TENANT,
    IssuerDirectory,
    TenantTemplate,
    TokenRules,
    TrustedIssuer,
)


def default_rules(jwt: JWT, audiences: frozenset[str]) -> TokenRules:
    """The rules of a plain issuer URL (and of introspected tokens of no known issuer)."""
    return TokenRules(
        audiences=audiences,
        scope_paths=tuple(claim_path(name) for name in jwt.scopes_claims),
        role_paths=tuple(claim_path(name) for name in jwt.roles_claims),
    )


def issuer_rules(issuer: Issuer, default: TokenRules) -> TokenRules:
    """``issuer``'s own settings, the defaults where it names none."""
    scopes, roles = issuer.scopes_claims, issuer.roles_claims
    return TokenRules(
        # RFC 9068 §4: the resource's audiences, and those this issuer's tokens name it by.
        audiences=default.audiences.union(issuer.audiences),
        audience_required=issuer.audience_required,
        clients=frozenset(issuer.clients),
        scope_paths=default.scope_paths if scopes is None else tuple(map(claim_path, scopes)),
        role_paths=default.role_paths if roles is None else tuple(map(claim_path, roles)),
        checks=issuer.checks,
        explain=issuer.explain,
    )


class DirectoryBuilder:
    """Builds the key sets of the configured issuers and the ``IssuerDirectory`` of them."""

    def __init__(
        self,
        jwt: JWT,
        limits: Limits,
        http: httpx.AsyncClient,
        clock: Callable[[], float],
        servers: AuthorizationServers,
        on_keys_removed: Callable[[], None],
    ) -> None:
        self.jwt = jwt
        self.limits = limits
        self.http = http
        self.clock = clock
        self.servers = servers
        self.on_keys_removed = on_keys_removed
        #: Every key set made up front (concrete issuers; a JWKS that tenants share).
        self.key_sets: dict[str, KeySet] = {}

    def build(self, issuers: Iterable[Issuer], default: TokenRules) -> IssuerDirectory:
        exact: list[TrustedIssuer] = []
        templates: list[TenantTemplate] = []
        for issuer in issuers:
            rules = issuer_rules(issuer, default)
            if not issuer.is_template:
                keys = self.key_sets[issuer.url] = self.key_set(issuer, issuer.url, None)
                exact.append(TrustedIssuer(issuer.url, keys, rules))
                continue
            # Issuer made tenants a frozenset or a function, given a template URL
            allowed = cast(frozenset[str] | Callable[[str], bool], issuer.tenants)
            keys_of = self.keys_of(issuer)
            templates.append(TenantTemplate(issuer.url, allowed, rules, keys_of, self.clock))
        return IssuerDirectory(exact, templates)

    def keys_of(self, issuer: Issuer) -> Callable[[str, str], KeySet]:
        """How a tenant's keys are had: one JWKS for all when ``jwks_uri`` names no tenant."""
        if issuer.jwks_uri is not None and TENANT not in issuer.jwks_uri:
            shared = self.key_sets[issuer.url] = self.key_set(issuer, issuer.url, None)
            return lambda url, tenant: shared
        return lambda url, tenant: self.key_set(issuer, url, tenant)

    def key_set(self, issuer: Issuer, url: str, tenant: str | None) -> KeySet:
        """An issuer's keys (a tenant's, for a template); a key leaving its JWKS empties
        the cache of verified tokens."""
        jwt = self.jwt
        jwks_uri, internal = issuer.jwks_uri, issuer.internal_url
        if tenant is not None:
            jwks_uri = None if jwks_uri is None else jwks_uri.replace(TENANT, tenant)
            internal = None if internal is None else internal.replace(TENANT, tenant)
        source = Source(url, internal, issuer.discovery, issuer.http_allowed)
        return KeySet(
            url,
            self.http,
            self.clock,
            self.servers,
            jwks_uri=jwks_uri,
            source=source,
            cache_ttl=jwt.keys_ttl,
            refresh_cooldown=jwt.keys_refresh_cooldown,
            max_stale=jwt.keys_max_stale,
            timeout=self.limits.http_timeout,
            on_keys_removed=self.on_keys_removed,
        )
