"""``Issuer(...)`` checks itself when built: a wrong value names the argument and the fix."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from oauthguard import JWT, ConfigurationError, Issuer, ResourceServer

URL = "https://idp.test/realms/demo"


def no_check(header: Any, claims: Any) -> None:
    return None


BAD: list[tuple[Callable[[], object], str]] = [
    (lambda: Issuer(URL, roles_claims=("realm_access..roles",)), r"roles_claims=.*empty segment"),
    (lambda: Issuer(URL, roles_claims=(".roles",)), "joined by single dots"),
    (lambda: Issuer(URL, roles_claims=("roles.",)), "empty segment"),
    (lambda: Issuer(URL, scopes_claims=("a..b",)), r"scopes_claims=.*empty segment"),
    (lambda: Issuer(URL, scopes_claims=("",)), "scopes_claims"),
    (lambda: Issuer(URL, roles_claims=(1,)), "roles_claims"),  # type: ignore[arg-type]
    (lambda: JWT(roles_claims=("a..b",)), r"JWT\(roles_claims=...\).*empty segment"),
    (lambda: JWT(scopes_claims=(".scope",)), r"JWT\(scopes_claims=...\)"),
    (lambda: Issuer(URL, audiences=("",)), "audiences"),
    (lambda: Issuer(URL, clients=(None,)), "clients"),  # type: ignore[arg-type]
    (lambda: Issuer(URL, discovery="openid"), "discovery"),  # type: ignore[arg-type]
    (lambda: Issuer(URL, audience_required="no"), "audience_required"),  # type: ignore[arg-type]
    (lambda: Issuer(URL, checks=("x",)), "checks"),  # type: ignore[arg-type]
    (lambda: Issuer(URL, explain="x"), "explain"),  # type: ignore[arg-type]
    (lambda: Issuer(URL, allow_http="yes"), "allow_http"),  # type: ignore[arg-type]
    (lambda: Issuer("https://{tenant}.idp.test/{tenant}", tenants=["a"]), "more than once"),
    (lambda: Issuer("https://idp.test/{tenant}"), "give tenants="),
    (lambda: Issuer(URL, tenants=["a"]), r"tenants=.*needs a url holding \{tenant\}"),
    (lambda: Issuer("https://idp.test/{tenant}", tenants=["a/b"]), "is not a tenant"),
    (lambda: Issuer("https://idp.test/{tenant}", tenants=[".."]), "is not a tenant"),
    (lambda: Issuer("https://idp.test/{tenant}", tenants=["x" * 65]), "is not a tenant"),
    (lambda: Issuer("https://idp.test/{tenant}", tenants=[]), "names no tenant"),
    (lambda: Issuer(URL, jwks_uri="https://idp.test/{tenant}/keys"), "the url does not"),
    (lambda: Issuer(URL, internal_url="ftp://kc/realms/demo"), "internal_url"),
    (lambda: Issuer(URL, internal_url="http://keycloak:8080/realms/demo"), "allow_http=True"),
    (lambda: Issuer(URL, jwks_uri="http://keycloak:8080/certs"), "OAUTHGUARD_INSECURE_HTTP=1"),
    (lambda: Issuer("http://keycloak:8080/realms/demo"), "allow_http=True"),
    (lambda: Issuer("http://keycloak:8080/realms/demo"), "OAUTHGUARD_INSECURE_HTTP=1"),
]


@pytest.mark.parametrize(("build", "named"), BAD)
def test_bad_issuer_settings_name_the_argument(build: Callable[[], object], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        build()


def test_an_http_resource_names_the_environment_variable() -> None:
    with pytest.raises(ConfigurationError, match="OAUTHGUARD_INSECURE_HTTP=1"):
        ResourceServer(resource="http://api:8000/mcp", authorization_servers=URL)


def test_the_issuer_is_normalised() -> None:
    issuer = Issuer(
        "https://login.test/{tenant}/v2.0",
        audiences="api://orders",  # type: ignore[arg-type]
        clients=["app-1"],  # type: ignore[arg-type]
        roles_claims="roles",  # type: ignore[arg-type]
        tenants=["contoso", "fabrikam"],
        checks=no_check,  # type: ignore[arg-type]
    )
    assert issuer.audiences == ("api://orders",)
    assert issuer.clients == ("app-1",)
    assert issuer.roles_claims == ("roles",)
    assert issuer.scopes_claims is None
    assert issuer.tenants == frozenset({"contoso", "fabrikam"})
    assert issuer.checks == (no_check,)
    assert hash(issuer) == hash(issuer)  # frozen and hashable, tenants included
    assert JWT().scopes_claims == ("scope", "scp")
    assert JWT().roles_claims == ()


def test_loopback_http_needs_no_opt_in_and_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="oauthguard"):
        ResourceServer(
            resource="http://127.0.0.1:8000/mcp",
            authorization_servers=[Issuer("http://localhost:9000/realms/demo")],
        )
    assert not caplog.records


def test_allow_http_permits_one_issuer_and_warns_when_the_server_is_built(
    caplog: pytest.LogCaptureFixture,
) -> None:
    issuer = Issuer(
        "http://keycloak:8080/realms/demo",
        internal_url="http://kc.internal:8080/realms/demo",
        allow_http=True,
    )
    with pytest.raises(ConfigurationError):
        Issuer("http://other:8080/realms/demo")  # the opt-in is this issuer's only
    with caplog.at_level(logging.WARNING, logger="oauthguard"):
        ResourceServer(resource="https://api.test/mcp", authorization_servers=[issuer])
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 2
    assert "http://keycloak:8080/realms/demo" in warned[0]
    assert "allow_http=True" in warned[0]
    assert "http://kc.internal:8080/realms/demo" in warned[1]


def test_the_environment_variable_permits_every_issuer_and_the_resource(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OAUTHGUARD_INSECURE_HTTP", "1")
    with caplog.at_level(logging.WARNING, logger="oauthguard"):
        ResourceServer(
            resource="http://api:8000/mcp",
            authorization_servers=["http://keycloak:8080/realms/demo", "https://as.test"],
        )
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 2
    assert "OAUTHGUARD_INSECURE_HTTP=1" in warned[0]
    assert "the resource http://api:8000/mcp" in warned[1]


@pytest.mark.parametrize("value", ["0", "true", "yes", ""])
def test_only_1_opts_in_through_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("OAUTHGUARD_INSECURE_HTTP", value)
    with pytest.raises(ConfigurationError):
        Issuer("http://keycloak:8080/realms/demo")
