"""What an introspection answer says of the token's kind, and the issuer's own checks,
apply to opaque tokens as to JWTs: a refresh or ID token the server calls active is no
access token (RFC 7662 §2.1: the server need not heed our token_type_hint)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import Any

import httpx
import pytest
from introspection_server import IntrospectionServer, active, bearer, guarded
from support import assert_refused

from oauthguard import InvalidToken, Issuer, providers

pytestmark = pytest.mark.anyio


async def response_to(server: IntrospectionServer, **settings: Any) -> httpx.Response:
    """The guard's answer to a request with the opaque token ``opaque-1``."""
    async with guarded(server, **settings) as (client, _):
        return await client.get("/mcp", headers=bearer("opaque-1"))


@pytest.mark.parametrize(
    "members",
    [
        {"token_type": "refresh_token"},
        {"token_type": "Refresh_Token"},
        {"token_type": "id_token"},
        {"token_use": "id"},
        {"token_use": "refresh"},
    ],
)
async def test_an_answer_describing_another_kind_of_token_is_refused(
    server: IntrospectionServer, members: dict[str, Any]
) -> None:
    active(server, "opaque-1", time.time(), **members)
    response = await response_to(server)
    params = assert_refused(response, 401, "invalid_token")
    assert "not an access token" in params["error_description"]


@pytest.mark.parametrize(
    "members", [{"token_type": "Bearer"}, {"token_type": "access_token"}, {"token_use": "access"}]
)
async def test_an_answer_describing_an_access_token_passes(
    server: IntrospectionServer, members: dict[str, Any]
) -> None:
    active(server, "opaque-1", time.time(), **members)
    response = await response_to(server)
    assert response.status_code == 200, response.text


def needs_mfa(header: Mapping[str, Any], claims: Mapping[str, Any]) -> None:
    assert header == {}  # an introspected token has no JOSE header
    if claims.get("acr") != "mfa":
        raise InvalidToken("this API needs a token from a login with MFA")


@pytest.mark.parametrize(("acr", "status"), [("mfa", 200), ("pwd", 401)])
async def test_the_issuers_own_checks_judge_introspected_tokens(
    server: IntrospectionServer, acr: str, status: int
) -> None:
    active(server, "opaque-1", time.time(), acr=acr)
    issuer = Issuer(server.base, checks=[needs_mfa], allow_http=True)
    response = await response_to(server, issuer=issuer)
    assert response.status_code == status, response.text
    if status == 401:
        params = assert_refused(response, 401, "invalid_token")
        assert params["error_description"] == "this API needs a token from a login with MFA"


def preset_at(server: IntrospectionServer, preset: Issuer) -> Issuer:
    """``preset``'s rules for the issuer the introspection server names."""
    return dataclasses.replace(preset, url=server.base, allow_http=True, internal_url=None)


@pytest.mark.parametrize(("typ", "status"), [("Bearer", 200), ("Refresh", 401), ("ID", 401)])
async def test_keycloaks_typ_is_checked_on_its_introspection_answers(
    server: IntrospectionServer, typ: str, status: int
) -> None:
    active(server, "opaque-1", time.time(), typ=typ, aud=[server.base, "orders-api"])
    issuer = preset_at(server, providers.keycloak("https://kc.test", "shop", "orders-api"))
    response = await response_to(server, issuer=issuer, require_aud=False)
    assert response.status_code == status, response.text
    if status == 401:
        description = assert_refused(response, 401, "invalid_token")["error_description"]
        assert "Keycloak ID token" in description if typ == "ID" else "typ 'Refresh'" in description


@pytest.mark.parametrize(
    ("members", "status"),
    [
        ({"token_type": "Bearer"}, 200),  # how Okta answers for an access token
        ({"token_type": "Bearer", "client_id": None}, 401),
        ({}, 401),  # neither cid nor Okta's introspection shape: an ID token's claims
    ],
)
async def test_oktas_token_kind_reads_its_introspection_answers(
    server: IntrospectionServer, members: dict[str, Any], status: int
) -> None:
    active(server, "opaque-1", time.time(), aud="api://default", **members)
    issuer = preset_at(server, providers.okta("example.okta.com"))
    response = await response_to(server, issuer=issuer)
    assert response.status_code == status, response.text
    if status == 401:
        description = assert_refused(response, 401, "invalid_token")["error_description"]
        assert "this is an Okta ID token" in description
