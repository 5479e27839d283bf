"""Settings check themselves when built: ``ConfigurationError`` names the argument and the fix."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from starlette.applications import Starlette

from oauthguard import (
    JWT,
    ConfigurationError,
    DPoP,
    Issuer,
    Limits,
    Metadata,
    OAuthGuard,
    ResourceServer,
)

GOOD: dict[str, Any] = {
    "resource": "https://api.test/mcp",
    "authorization_servers": ["https://as.test"],
}


def server(**changes: Any) -> ResourceServer:
    return ResourceServer(**{**GOOD, **changes})


BAD: list[tuple[Callable[[], object], str]] = [
    (lambda: server(resource="/mcp"), "resource"),
    (lambda: server(resource="api.test/mcp"), "resource"),
    (lambda: server(resource="https://api.test/mcp#frag"), "fragment"),
    (lambda: server(resource="https://api.test/mcp#"), "fragment"),
    (lambda: server(resource="http://api.test/mcp"), "https"),
    (lambda: server(resource="ftp://api.test/mcp"), "https"),
    (lambda: server(resource=42), "resource must be a URL string"),
    (lambda: server(authorization_servers=[]), "authorization_servers needs at least one"),
    (lambda: server(authorization_servers=["http://as.test"]), "authorization_servers"),
    (lambda: server(authorization_servers=["as.test"]), "authorization_servers"),
    (lambda: server(authorization_servers=["https://as.test?tenant=1"]), "query"),
    (lambda: server(authorization_servers=["https://as.test#x"]), "fragment"),
    (lambda: server(authorization_servers=[""]), r"Issuer\(url=...\)"),
    (lambda: server(authorization_servers=["https://a.test", "https://a.test"]), "twice"),
    (lambda: server(authorization_servers=42), "authorization_servers must be"),
    (lambda: Issuer("https://as.test", jwks_uri="http://as.test/jwks"), "jwks_uri"),
    (lambda: JWT(algorithms=("HS256",)), r"JWT\(algorithms=...\): 'HS256'"),
    (lambda: JWT(algorithms=("RS256", "none")), "'none'"),
    (lambda: JWT(algorithms=()), r"JWT\(algorithms=...\) must name at least one"),
    (lambda: JWT(algorithms=("rs256",)), "rs256"),
    (lambda: JWT(leeway=-1), r"JWT\(leeway=...\)"),
    (lambda: JWT(leeway="30"), r"JWT\(leeway=...\)"),  # type: ignore[arg-type]
    (lambda: JWT(keys_ttl=-5), r"JWT\(keys_ttl=...\)"),
    (lambda: JWT(keys_refresh_cooldown=None), "keys_refresh_cooldown"),  # type: ignore[arg-type]
    (lambda: JWT(keys_max_stale=True), "keys_max_stale"),
    (lambda: JWT(scopes_claims=(None,)), "scopes_claims"),  # type: ignore[arg-type]
    (lambda: DPoP(mode="sometimes"), r"DPoP\(mode=...\)"),  # type: ignore[arg-type]
    (lambda: DPoP(algorithms=()), r"DPoP\(algorithms=...\)"),
    (lambda: DPoP(algorithms=("HS256",)), "HS256"),
    (lambda: DPoP(max_age=0), r"DPoP\(max_age=...\)"),
    (lambda: DPoP(max_age=True), r"DPoP\(max_age=...\)"),
    (lambda: DPoP(max_age=7200), "1 to 3600"),
    (lambda: DPoP(nonces="yes"), "DPoPNonces"),  # type: ignore[arg-type]
    (lambda: DPoP(trusted_proxies=["not an address"]), "trusted_proxies"),
    (lambda: DPoP(public_origin="https://api.test/mcp"), "has a path"),
    (lambda: Limits(max_token_bytes=10), r"Limits\(max_token_bytes=...\)"),
    (lambda: Limits(max_token_bytes=1.5), "max_token_bytes"),  # type: ignore[arg-type]
    (lambda: Limits(token_cache_size=-1), "token_cache_size"),
    (lambda: Limits(http_timeout=0), r"Limits\(http_timeout=...\) must be a positive"),
    (lambda: Metadata(scopes_supported=(1,)), "scopes_supported"),  # type: ignore[arg-type]
    (lambda: Metadata(resource_name=""), "resource_name"),
    (lambda: Metadata(resource_name="line\nbreak"), "resource_name"),
    (lambda: Metadata(resource_documentation="docs"), "resource_documentation"),
    (lambda: Metadata(realm='a"\r\n'), "realm"),
    (lambda: server(audiences=[""]), "audiences"),
    (lambda: server(jwt={"leeway": 5}), r"jwt must be oauthguard.JWT\(...\)"),
    (lambda: server(limits=5), r"limits must be oauthguard.Limits\(...\)"),
    (lambda: server(dpop=5), "dpop must be"),
    (lambda: server(dpop="sometimes"), r"DPoP\(mode=...\)"),
    (lambda: server(user_factory="me"), r"user_factory=\.\.\.\) must be a callable"),
    (lambda: server(introspection="yes"), "introspection must be"),
    (lambda: OAuthGuard(Starlette()), "OAuthGuard needs server="),
    (lambda: OAuthGuard(Starlette(), server=server(), resource=GOOD["resource"]), "not both"),
    (lambda: OAuthGuard(Starlette(), server="x"), "server must be"),  # type: ignore[arg-type]
    (lambda: OAuthGuard(Starlette(), server(), public_paths=["health"]), "public_paths"),
    (lambda: OAuthGuard(Starlette(), server(), public_paths=["/a*b"]), "public_paths"),
    (lambda: OAuthGuard(Starlette(), server(), metadata=3), "metadata must be"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("build", "named"), BAD)
def test_bad_settings_name_the_argument(build: Callable[[], object], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        build()


@pytest.mark.parametrize(
    "build",
    [
        lambda: server(resource="http://127.0.0.1:8000/mcp"),
        lambda: server(resource="http://localhost/mcp"),
        lambda: server(resource="https://api.test/"),
        lambda: server(authorization_servers="https://as.test"),
        lambda: server(authorization_servers=Issuer("https://as.test")),
        lambda: server(
            authorization_servers=["http://127.0.0.1:9000/realms/x", Issuer("https://as.test/")]
        ),
        lambda: server(jwt=JWT(algorithms=("ES256",))),
        lambda: server(jwt=JWT(algorithms="EdDSA")),  # type: ignore[arg-type]
        lambda: server(authorization_servers=[Issuer("https://as.test", "https://as.test/j")]),
        lambda: server(audiences="urn:api"),
        lambda: server(dpop="required"),
        lambda: server(dpop=DPoP(trusted_proxies="10.0.0.0/8")),
        lambda: OAuthGuard(Starlette(), server(), public_paths=["/health", "/docs/*", "/*"]),
        lambda: OAuthGuard(
            Starlette(),
            **GOOD,
            metadata=Metadata(resource_name="My API", resource_documentation="https://a.test/d"),
        ),
    ],
)
def test_good_settings_are_accepted(build: Callable[[], object]) -> None:
    build()


def test_the_settings_are_normalised() -> None:
    built = server(audiences="urn:api", jwt=JWT(algorithms="ES256", scopes_claims="scp"))  # type: ignore[arg-type]
    assert built.audiences == frozenset({"urn:api"})
    assert built.jwt.algorithms == ("ES256",)
    assert built.jwt.scopes_claims == ("scp",)
    assert DPoP(public_origin="https://API.test:443").public_origin == "https://api.test"
    assert DPoP(trusted_proxies="10.0.0.0/8").trusted_proxies == ("10.0.0.0/8",)
    default = server()
    assert default.audiences == frozenset({GOOD["resource"]})
    assert default.issuers == (Issuer("https://as.test"),)
    assert (
        default.jwt.leeway,
        default.jwt.keys_ttl,
        default.jwt.keys_refresh_cooldown,
        default.jwt.keys_max_stale,
        default.limits.max_token_bytes,
        default.limits.token_cache_size,
        default.limits.http_timeout,
        default.dpop.mode,
        default.dpop.max_age,
    ) == (30, 600, 30, 86400, 16384, 10_000, 5.0, "allowed", 60)


def test_settings_are_frozen() -> None:
    settings = JWT()
    with pytest.raises(AttributeError):
        settings.leeway = 5  # type: ignore[misc]
