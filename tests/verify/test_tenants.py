"""Issuer URLs holding ``{tenant}``: tokens of allowed tenants only, each tenant's keys its
own (or one JWKS for all), answers of a tenants function cached, and an ``iss`` that would
leave the template's place refused — over real HTTP on loopback."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from apps import NOW, RESOURCE, Clock, bearer, inner_app
from guards import build_guard
from inprocess import InProcessClient, asgi_get
from support import Recording, assert_refused, free_port, serve

from oauthguard import Issuer
from oauthguard._jose.b64 import b64url_decode, b64url_encode
from oauthguard._verify.trust import TENANT_CACHE_SIZE, TENANT_CACHE_TTL
from oauthguard.testing import TestIssuer

TENANTS = ("contoso", "fabrikam", "3f2b6c1e-9d7a-4e5b-8c2d-1a0b9c8d7e6f", "other")


class Tenants:
    """One server for several tenants, each a ``TestIssuer`` with its own keys at
    ``/{tenant}/v2.0``, the way a multi-tenant identity provider serves them."""

    def __init__(self, port: int) -> None:
        self.template = f"http://127.0.0.1:{port}/{{tenant}}/v2.0"
        self.issuers = {
            tenant: TestIssuer(self.template.replace("{tenant}", tenant), algorithms=("RS256",))
            for tenant in TENANTS
        }

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        segments = scope["path"].split("/")
        for tenant, issuer in self.issuers.items():
            if tenant in segments:
                await issuer.app(scope, receive, send)
                return
        await self.issuers[TENANTS[0]].app(scope, receive, send)  # its 404


@pytest.fixture(scope="module")
def tenants() -> Iterator[tuple[Tenants, Recording]]:
    port = free_port()
    served = Tenants(port)
    recording = Recording(served)
    with serve(recording, port=port):
        yield served, recording


def api(*servers: Issuer, clock: Clock | None = None) -> InProcessClient:
    return InProcessClient(
        build_guard(
            inner_app(),
            resource=RESOURCE,
            authorization_servers=list(servers),
            clock=clock or Clock(),
            http_client=httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=0)),
        )
    )


def get(app: Any, issuer: TestIssuer, **claims: Any) -> httpx.Response:
    token = issuer.token(audience=RESOURCE, now=NOW, claims=claims)
    response: httpx.Response = app.get("/mcp", headers=bearer(token))
    return response


def test_tokens_of_the_listed_tenants_are_accepted_with_their_own_keys(
    tenants: tuple[Tenants, Recording],
) -> None:
    served, recording = tenants
    contoso, fabrikam = served.issuers["contoso"], served.issuers["fabrikam"]
    guid = served.issuers[TENANTS[2]]
    app = api(Issuer(served.template, tenants=["contoso", "fabrikam", TENANTS[2]]))
    before = len(recording.paths)
    for issuer in (contoso, fabrikam, guid):
        response = get(app, issuer)
        assert response.status_code == 200, response.text
        assert response.json()["issuer"] == issuer.issuer
    fetched = recording.paths[before:]
    assert "/.well-known/oauth-authorization-server/contoso/v2.0" in fetched
    assert "/fabrikam/v2.0/jwks" in fetched
    # a token naming contoso but signed with fabrikam's key: contoso's keys do not verify it
    forged = fabrikam.token(audience=RESOURCE, now=NOW, claims={"iss": contoso.issuer})
    params = assert_refused(app.get("/mcp", headers=bearer(forged)), 401, "invalid_token")
    assert "kid" in params["error_description"]


def test_a_tenant_not_allowed_is_refused_and_named_in_the_log(
    tenants: tuple[Tenants, Recording], caplog: pytest.LogCaptureFixture
) -> None:
    served, recording = tenants
    app = api(Issuer(served.template, tenants=["contoso"]))
    before = len(recording.paths)
    with caplog.at_level(logging.INFO, logger="oauthguard"):
        params = assert_refused(get(app, served.issuers["other"]), 401, "invalid_token")
    assert params["error_description"] == "the token's issuer is not trusted"
    assert "the tenant 'other'" in caplog.text
    assert recording.paths[before:] == []  # nothing fetched for it


def test_the_keys_of_a_tenant_are_made_when_its_first_token_comes(
    tenants: tuple[Tenants, Recording],
) -> None:
    served, _ = tenants
    app = api(Issuer(served.template, tenants=["contoso"]))
    server = app.app.server
    assert server.key_sets == {}
    assert get(app, served.issuers["contoso"]).status_code == 200
    assert server.key_sets == {}  # a tenant's keys live with its template, bounded


def test_a_tenants_function_is_asked_once_per_tenant_yes_or_no(
    tenants: tuple[Tenants, Recording],
) -> None:
    served, _ = tenants
    asked: list[str] = []

    def allowed(tenant: str) -> bool:
        asked.append(tenant)
        return tenant != "other"

    clock = Clock()
    app = api(Issuer(served.template, tenants=allowed), clock=clock)
    for _ in range(3):
        assert get(app, served.issuers["contoso"]).status_code == 200
        assert_refused(get(app, served.issuers["other"]), 401, "invalid_token")
    assert asked == ["contoso", "other"]
    clock.advance(TENANT_CACHE_TTL)
    assert_refused(get(app, served.issuers["other"]), 401, "invalid_token")
    assert asked == ["contoso", "other", "other"]


def test_a_tenants_function_that_fails_refuses_the_tenant(
    tenants: tuple[Tenants, Recording],
) -> None:
    served, _ = tenants

    def broken(tenant: str) -> bool:
        raise RuntimeError("the tenant registry is down")

    app = api(Issuer(served.template, tenants=broken))
    assert_refused(get(app, served.issuers["contoso"]), 401, "invalid_token")


@pytest.mark.parametrize(
    "tenant",
    [
        "contoso/../fabrikam",
        "contoso/x",
        "..",
        ".",
        "",
        ".contoso",
        "con%2Ftoso",
        "con toso",
        "contoso?x=",
        "contoso#",
        "contoso@evil.test",
        "c" * 65,
        "contoso\n",
    ],
)
def test_an_iss_that_would_leave_the_templates_place_is_refused(
    tenants: tuple[Tenants, Recording], tenant: str
) -> None:
    served, recording = tenants
    asked: list[str] = []
    app = api(Issuer(served.template, tenants=lambda t: asked.append(t) is None))
    iss = served.template.replace("{tenant}", tenant)
    before = len(recording.paths)
    params = assert_refused(get(app, served.issuers["contoso"], iss=iss), 401, "invalid_token")
    assert params["error_description"] == "the token's issuer is not trusted"
    assert asked == []
    assert recording.paths[before:] == []


def test_a_shared_jwks_serves_every_tenant_with_one_fetch(
    tenants: tuple[Tenants, Recording],
) -> None:
    served, recording = tenants
    contoso, fabrikam = served.issuers["contoso"], served.issuers["fabrikam"]
    shared = served.template.replace("{tenant}", "contoso") + "/jwks"
    app = api(Issuer(served.template, jwks_uri=shared, tenants=["contoso", "fabrikam"]))
    before = len(recording.paths)
    assert get(app, contoso).status_code == 200
    # the provider signs every tenant's tokens with the keys of one JWKS
    assert get(app, contoso, iss=fabrikam.issuer).json()["issuer"] == fabrikam.issuer
    assert recording.paths[before:] == ["/contoso/v2.0/jwks"]
    assert list(app.app.server.key_sets) == [served.template]


def test_a_jwks_uri_per_tenant_is_filled_with_the_tenant(
    tenants: tuple[Tenants, Recording],
) -> None:
    served, recording = tenants
    jwks = served.template + "/jwks"
    app = api(Issuer(served.template, jwks_uri=jwks, tenants=["contoso", "fabrikam"]))
    before = len(recording.paths)
    assert get(app, served.issuers["fabrikam"]).status_code == 200
    assert recording.paths[before:] == ["/fabrikam/v2.0/jwks"]


def test_the_tenants_kept_are_bounded() -> None:
    from oauthguard._verify.trust import TenantTemplate, TokenRules

    asked: list[str] = []
    made: list[str] = []

    def keys_for(url: str, tenant: str) -> Any:
        made.append(tenant)
        return object()

    clock = Clock()
    template = TenantTemplate(
        "https://login.test/{tenant}/v2.0",
        lambda tenant: asked.append(tenant) is None,
        TokenRules(frozenset({RESOURCE})),
        keys_for,
        clock,
    )
    for n in range(TENANT_CACHE_SIZE + 1):
        iss = f"https://login.test/t{n}/v2.0"
        assert template.trusted(iss, f"t{n}") is not None
    assert template.trusted("https://login.test/t1/v2.0", "t1") is not None
    assert len(asked) == len(made) == TENANT_CACHE_SIZE + 1  # t1 still kept
    assert template.trusted("https://login.test/t0/v2.0", "t0") is not None
    assert asked[-1] == "t0"  # the oldest left, so it is asked again


@pytest.mark.anyio
async def test_tokens_of_tenants_not_allowed_do_not_evict_an_allowed_tenants_keys(
    tenants: tuple[Tenants, Recording],
) -> None:
    served, recording = tenants
    contoso = served.issuers["contoso"]
    guard = api(Issuer(served.template, tenants=lambda tenant: tenant == "contoso")).app
    valid = bearer(contoso.token(audience=RESOURCE, now=NOW))
    assert (await asgi_get(guard, "/mcp", valid)).status_code == 200
    before = len(recording.paths)
    # anyone can send tokens naming made-up tenants, unsigned (their signatures are
    # another token's): refused before any signature is checked. Straight to the guard's
    # ASGI entry: through httpx, the client cost twice what the guard does per request.
    header, payload, signature = valid["Authorization"].removeprefix("Bearer ").split(".")
    claims = json.loads(b64url_decode(payload))
    for n in range(TENANT_CACHE_SIZE):
        claims["iss"] = served.template.replace("{tenant}", f"stranger{n}")
        forged = f"{header}.{b64url_encode(json.dumps(claims).encode())}.{signature}"
        response = await asgi_get(guard, "/mcp", bearer(forged))
        assert_refused(response, 401, "invalid_token")
    assert (await asgi_get(guard, "/mcp", valid)).status_code == 200
    assert recording.paths[before:] == []  # contoso's keys were kept, not fetched again
