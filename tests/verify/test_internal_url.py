"""Issuers reached at another URL than their identifier (a container network), plain http
where it is allowed, and discovery restricted to one kind of metadata — over real HTTP on
loopback, each issuer served by uvicorn."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from apps import NOW, RESOURCE, Clock, bearer, client, inner_app
from guards import build_guard
from support import NameMap, Recording, assert_refused, free_port, serve

from oauthguard import ConfigurationError, Issuer
from oauthguard.testing import TestIssuer

PUBLIC = "https://idp.example.com/realms/demo"
RFC8414 = "/.well-known/oauth-authorization-server/realms/demo"


@contextmanager
def served(issuer: TestIssuer, missing: tuple[str, ...] = ()) -> Iterator[tuple[Recording, str]]:
    """``issuer`` on a loopback port, whatever its identifier says; its requests recorded."""
    recording = Recording(issuer.app, missing)
    port = free_port()
    with serve(recording, port=port):
        yield recording, f"127.0.0.1:{port}"


def api(*servers: Issuer, names: dict[str, str] | None = None) -> Any:
    transport = NameMap(names or {})
    return client(
        build_guard(
            inner_app(),
            resource=RESOURCE,
            authorization_servers=list(servers),
            clock=Clock(),
            http_client=httpx.AsyncClient(transport=transport),
        )
    )


def unavailable(response: httpx.Response) -> None:
    """503 (the keys cannot be had), never a 401 or a pass."""
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "temporarily_unavailable"
    assert "retry-after" in response.headers


def get(app: Any, issuer: TestIssuer, **claims: Any) -> httpx.Response:
    token = issuer.token(audience=RESOURCE, now=NOW, claims=claims)
    response: httpx.Response = app.get("/mcp", headers=bearer(token))
    return response


def test_metadata_and_keys_come_from_the_internal_base_and_iss_is_the_public_url() -> None:
    issuer = TestIssuer(PUBLIC, algorithms=("RS256",))
    with served(issuer) as (recording, address):
        app = api(Issuer(PUBLIC, internal_url=f"http://{address}/realms/demo"))
        response = get(app, issuer)
        assert response.status_code == 200, response.text
        assert response.json()["issuer"] == PUBLIC
        # the JWKS named https://idp.example.com/realms/demo/jwks, fetched under the base
        assert recording.paths == [RFC8414, "/realms/demo/jwks"]
        assert {host for host, _ in recording.seen} == {address}
        internal_iss = get(app, issuer, iss=f"http://{address}/realms/demo")
        params = assert_refused(internal_iss, 401, "invalid_token")
        assert params["error_description"] == "the token's issuer is not trusted"


def test_a_document_naming_the_internal_url_as_its_issuer_is_refused() -> None:
    issuer = TestIssuer(PUBLIC, algorithms=("RS256",))
    with served(issuer) as (_, address):
        internal = f"http://{address}/realms/demo"
        issuer.extra_metadata["issuer"] = internal  # RFC 8414 §3.3: must be the public one
        app = api(Issuer(PUBLIC, internal_url=internal))
        unavailable(get(app, issuer))


def test_only_urls_under_the_public_base_are_rewritten() -> None:
    issuer = TestIssuer(PUBLIC, algorithms=("RS256",))
    keys = TestIssuer("http://127.0.0.1/elsewhere")
    keys.keys = issuer.keys  # the same keys, published at another server
    with served(issuer) as (recording, address), served(keys) as (elsewhere, other):
        issuer.extra_metadata["jwks_uri"] = f"http://{other}/elsewhere/jwks"
        app = api(Issuer(PUBLIC, internal_url=f"http://{address}/realms/demo"))
        assert get(app, issuer).status_code == 200
        assert recording.paths == [RFC8414]
        assert elsewhere.paths == ["/elsewhere/jwks"]


def test_a_prefix_that_is_no_whole_path_segment_is_not_rewritten() -> None:
    issuer = TestIssuer(PUBLIC, algorithms=("RS256",))
    with served(issuer) as (recording, address):
        issuer.extra_metadata["jwks_uri"] = PUBLIC + "-other/jwks"  # not under PUBLIC
        # idp.example.com is a closed port on loopback here: the test never leaves the machine.
        closed = {"idp.example.com": f"127.0.0.1:{free_port()}"}
        app = api(Issuer(PUBLIC, internal_url=f"http://{address}/realms/demo"), names=closed)
        unavailable(get(app, issuer))  # asked at idp.example.com, which does not answer
    assert [path for _, path in recording.seen] == [RFC8414]  # not at the internal URL


@pytest.mark.parametrize("opt_in", ["allow_http", "environment"])
def test_an_http_issuer_in_a_container_network_with_an_opt_in(
    opt_in: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    issuer = TestIssuer("http://keycloak:8080/realms/demo", algorithms=("RS256",))
    with served(issuer) as (recording, address):
        if opt_in == "environment":
            monkeypatch.setenv("OAUTHGUARD_INSECURE_HTTP", "1")
        settings = Issuer(issuer.issuer, allow_http=opt_in == "allow_http")
        app = api(settings, names={"keycloak:8080": address})
        response = get(app, issuer)
        assert response.status_code == 200, response.text
        assert recording.seen == [
            ("keycloak:8080", RFC8414),
            ("keycloak:8080", "/realms/demo/jwks"),
        ]
    monkeypatch.delenv("OAUTHGUARD_INSECURE_HTTP", raising=False)
    with pytest.raises(ConfigurationError, match="allow_http=True"):
        Issuer(issuer.issuer)


def test_an_internal_http_base_with_allow_http_and_the_public_https_identifier() -> None:
    issuer = TestIssuer(PUBLIC, algorithms=("RS256",))
    with served(issuer) as (recording, address):
        settings = Issuer(PUBLIC, internal_url="http://keycloak:8080/realms/demo", allow_http=True)
        app = api(settings, names={"keycloak:8080": address})
        assert get(app, issuer).status_code == 200
        assert recording.seen[-1] == ("keycloak:8080", "/realms/demo/jwks")


def test_discovered_http_urls_on_other_hosts_are_used_only_when_allowed() -> None:
    issuer = TestIssuer("http://127.0.0.1/realms/demo", algorithms=("RS256",))
    keys = TestIssuer("http://127.0.0.1/k")
    keys.keys = issuer.keys
    with served(issuer) as (_, address), served(keys) as (elsewhere, other):
        issuer.issuer = f"http://{address}/realms/demo"  # loopback: no opt-in for the issuer
        issuer.extra_metadata["jwks_uri"] = "http://keys.internal:9000/k/jwks"
        names = {"keys.internal:9000": other}
        refusing = api(Issuer(issuer.issuer), names=names)
        unavailable(get(refusing, issuer))
        assert elsewhere.paths == []
        allowing = api(Issuer(issuer.issuer, allow_http=True), names=names)
        assert get(allowing, issuer).status_code == 200
        assert elsewhere.paths == ["/k/jwks"]


def test_oidc_discovery_asks_only_for_the_openid_configuration() -> None:
    issuer = TestIssuer(PUBLIC, algorithms=("RS256",))
    with served(issuer) as (recording, address):
        internal = f"http://{address}/realms/demo"
        app = api(Issuer(PUBLIC, internal_url=internal, discovery="oidc"))
        assert get(app, issuer).status_code == 200
        assert recording.paths[0] == "/.well-known/openid-configuration/realms/demo"
        assert RFC8414 not in recording.paths


@pytest.mark.parametrize(("discovery", "status"), [("oauth", 503), ("auto", 200)])
def test_oauth_discovery_asks_only_rfc_8414(discovery: str, status: int) -> None:
    issuer = TestIssuer(PUBLIC, algorithms=("RS256",))
    with served(issuer, missing=(RFC8414,)) as (recording, address):
        internal = f"http://{address}/realms/demo"
        app = api(Issuer(PUBLIC, internal_url=internal, discovery=discovery))  # type: ignore[arg-type]
        assert get(app, issuer).status_code == status
        if discovery == "oauth":
            assert recording.paths == [RFC8414]
        else:
            assert recording.paths[:2] == [RFC8414, "/.well-known/openid-configuration/realms/demo"]
