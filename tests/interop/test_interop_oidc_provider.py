"""Interop with an independent authorization server: panva's ``oidc-provider`` (Node).

tests/interop/provider.mjs runs it on loopback: the client credentials grant with RFC 8707
resource indicators, RFC 9068 JWT access tokens (RS256 or ES256, by client), opaque tokens for
other resources, DPoP, introspection (RFC 7662, RFC 9701), revocation, and key rotation at
``POST /__rotate``. tests/interop/client.mjs is a DPoP client built on panva's
``oauth4webapi``. Install both with ``npm ci`` in tests/interop (tests/oidc_provider.py runs
them).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from guards import build_guard
from oidc_provider import (
    CLIENTS,
    JWT_RESOURCE,
    OPAQUE_RESOURCE,
    OTHER_JWT_RESOURCE,
    OTHER_OPAQUE_RESOURCE,
    AuthorizationServer,
    bearer,
    dpop,
    dpop_client,
    jose_header,
    jose_part,
    running_provider,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from support import assert_refused, serve

from oauthguard import DPoPNonces, Introspection, OAuthGuard, require
from oauthguard.testing import TestIssuer

pytestmark = pytest.mark.node


@pytest.fixture(scope="module")
def provider() -> Iterator[AuthorizationServer]:
    """oidc-provider on a free loopback port for this module's tests."""
    with running_provider() as server:
        yield server


async def whoami(request: Request) -> Response:
    token = request.auth
    return JSONResponse(
        {
            "client_id": token.client_id,
            "subject": token.subject,
            "issuer": token.issuer,
            "scopes": sorted(token.scopes),
            "audience": list(token.audience),
            "scheme": token.scheme,
            "jkt": token.jkt,
        }
    )


@contextlib.contextmanager
def guarded(
    provider: AuthorizationServer, resource: str = JWT_RESOURCE, **settings: Any
) -> Iterator[tuple[OAuthGuard, str]]:
    """Our resource at ``<base>/api``, guarded against oidc-provider, served on loopback."""
    guard = build_guard(
        Starlette(routes=[Route("/api", whoami, methods=["GET", "POST"])]),
        resource=resource,
        authorization_servers=[provider.issuer],
        **settings,
    )
    with serve(guard) as base:
        yield guard, f"{base}/api"


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_its_jwt_access_tokens_for_our_resource_are_accepted(
    provider: AuthorizationServer, alg: str
) -> None:
    client_id = CLIENTS[alg]
    token = provider.token(client_id, scope="read write")
    header = jose_header(token)
    assert (header["alg"], header["typ"]) == (alg, "at+jwt")  # RFC 9068 §2.1
    with guarded(provider) as (_, url):
        response = httpx.get(url, headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "client_id": client_id,
        "subject": client_id,
        "issuer": provider.issuer,
        "scopes": ["read", "write"],
        "audience": [JWT_RESOURCE],
        "scheme": "Bearer",
        "jkt": None,
    }


def test_our_metadata_names_it_by_the_issuer_its_own_metadata_declares(
    provider: AuthorizationServer,
) -> None:
    with guarded(provider) as (_, url):
        base = url.removesuffix("/api")
        ours = httpx.get(f"{base}/.well-known/oauth-protected-resource/jwt").json()
    assert ours["resource"] == JWT_RESOURCE
    [issuer] = ours["authorization_servers"]  # RFC 9728 §2, RFC 8414 §3.3: exactly equal
    theirs = httpx.get(f"{issuer}/.well-known/openid-configuration").json()
    assert theirs["issuer"] == issuer == provider.issuer
    assert "ES256" in theirs["dpop_signing_alg_values_supported"]


def test_its_token_for_another_resource_is_refused(provider: AuthorizationServer) -> None:
    token = provider.token(resource=OTHER_JWT_RESOURCE)
    with guarded(provider) as (_, url):
        refused = httpx.get(url, headers=bearer(token))
    params = assert_refused(refused, 401, "invalid_token")
    assert params["error_description"] == "the token is not meant for this resource (aud)"


def test_its_opaque_token_is_refused_without_introspection(provider: AuthorizationServer) -> None:
    token = provider.token(resource=OPAQUE_RESOURCE)
    with guarded(provider, resource=OPAQUE_RESOURCE) as (_, url):
        refused = httpx.get(url, headers=bearer(token))
    assert_refused(refused, 401, "invalid_token")


def test_its_scopes_meet_our_path_rules(provider: AuthorizationServer) -> None:
    with guarded(provider, rules={"/api": require("write")}) as (_, url):
        allowed = httpx.get(url, headers=bearer(provider.token(scope="read write")))
        refused = httpx.get(url, headers=bearer(provider.token(scope="read")))
    assert allowed.status_code == 200, allowed.text
    params = assert_refused(refused, 403, "insufficient_scope")
    assert params["scope"] == "write"


def test_rotation_refuses_tokens_of_removed_keys_and_accepts_new_ones(
    provider: AuthorizationServer,
) -> None:
    with guarded(provider) as (guard, url):
        seen = {alg: provider.token(client) for alg, client in CLIENTS.items()}
        for token in seen.values():
            assert httpx.get(url, headers=bearer(token)).status_code == 200
        unseen = provider.token(CLIENTS["ES256"])  # issued before rotation, never presented

        kids = provider.rotate()
        assert provider.jwks_kids() == kids
        assert not {jose_header(token)["kid"] for token in seen.values()} & set(kids)

        # The first new kid is a miss: one refetch of the JWKS finds both new keys.
        for alg, client in CLIENTS.items():
            token = provider.token(client)
            assert jose_header(token)["kid"] in kids
            response = httpx.get(url, headers=bearer(token))
            assert response.status_code == 200, f"{alg}: {response.text}"
        assert guard.server.key_sets[provider.issuer].fetches == 2

        for token in [*seen.values(), unseen]:
            params = assert_refused(httpx.get(url, headers=bearer(token)), 401, "invalid_token")
            assert params["error_description"] == (
                "no signing key of the issuer matches the token's kid"
            )


def test_its_token_is_refused_once_expired(provider: AuthorizationServer) -> None:
    issued = provider.token_response()
    later = time.time() + issued["expires_in"] + 31  # past exp and the 30 s leeway
    with guarded(provider, clock=lambda: later) as (_, url):
        refused = httpx.get(url, headers=bearer(issued["access_token"]))
    params = assert_refused(refused, 401, "invalid_token")
    assert params["error_description"] == "the token has expired"


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_its_dpop_bound_jwts_work_with_proofs_from_oauth4webapi(
    provider: AuthorizationServer, alg: str
) -> None:
    with guarded(provider) as (_, url):
        result = dpop_client(provider, url, CLIENTS[alg])
    token = result["access_token"]
    assert result["token_type"] == "dpop"
    assert jose_header(token)["alg"] == alg
    assert jose_part(token, 1)["cnf"] == {"jkt": result["jkt"]}  # RFC 9449 §6.1
    [attempt] = result["attempts"]
    assert attempt["authorization"] == f"DPoP {token}"
    assert attempt["status"] == 200, attempt["body"]
    body = json.loads(attempt["body"])
    assert (body["scheme"], body["jkt"], body["client_id"]) == ("DPoP", result["jkt"], CLIENTS[alg])


def test_its_dpop_bound_token_needs_a_fresh_matching_proof(provider: AuthorizationServer) -> None:
    with guarded(provider) as (_, url):
        result = dpop_client(provider, url)
        [attempt] = result["attempts"]
        assert attempt["status"] == 200, attempt["body"]

        replayed = httpx.get(url, headers=dpop(attempt))  # RFC 9449 §11.1
        params = assert_refused(replayed, 401, "invalid_dpop_proof", scheme="DPoP")
        assert params["error_description"] == "the DPoP proof was already used (jti replay)"

        other_method = httpx.post(url, headers=dpop(attempt))  # §4.3 check 8
        params = assert_refused(other_method, 401, "invalid_dpop_proof", scheme="DPoP")
        assert params["error_description"] == (
            "the DPoP proof's htm does not match the request method"
        )

        other_token = {**dpop(attempt), "Authorization": f"DPoP {provider.token()}"}
        params = assert_refused(
            httpx.get(url, headers=other_token), 401, "invalid_dpop_proof", scheme="DPoP"
        )  # §4.3 check 11: ath
        assert params["error_description"] == (
            "the DPoP proof's ath does not match the access token"
        )

        downgraded = httpx.get(url, headers=bearer(result["access_token"]))  # §7.2
        params = assert_refused(downgraded, 401, "invalid_token")
        assert "DPoP-bound" in params["error_description"]


def test_oauth4webapi_answers_our_dpop_nonce_challenge(provider: AuthorizationServer) -> None:
    nonces = DPoPNonces(secret="interop nonce secret, 32 bytes..", lifetime=300)
    with guarded(provider, dpop_nonce=nonces) as (_, url):
        result = dpop_client(provider, url)
    first, second = result["attempts"]
    # RFC 9449 §9: a 401 use_dpop_nonce challenge with the nonce to use...
    assert first["status"] == 401
    assert first["www_authenticate"].count('error="use_dpop_nonce"') == 1
    assert first["dpop_nonce"]
    assert "nonce" not in jose_part(first["proof"], 1)
    # ...which the client puts in its next proof, and that one passes.
    assert jose_part(second["proof"], 1)["nonce"] == first["dpop_nonce"]
    assert second["status"] == 200, second["body"]


def test_dpop_required_takes_its_dpop_tokens_and_refuses_its_bearer_tokens(
    provider: AuthorizationServer,
) -> None:
    with guarded(provider, dpop="required") as (_, url):
        refused = httpx.get(url, headers=bearer(provider.token()))
        result = dpop_client(provider, url)
    assert_refused(refused, 401, "invalid_token", scheme="DPoP")
    assert "Bearer" not in refused.headers["www-authenticate"]
    [attempt] = result["attempts"]
    assert attempt["status"] == 200, attempt["body"]


def introspection(client_id: str = "resource-server", **settings: Any) -> Introspection:
    """Our resource server's client at the provider (the endpoint from its metadata)."""
    settings.setdefault("client_secret", f"{client_id}-secret")
    return Introspection(client_id=client_id, **settings)


@pytest.mark.parametrize("signed", [False, True], ids=["json", "rfc9701-jwt"])
def test_its_opaque_tokens_are_accepted_through_its_introspection_endpoint(
    provider: AuthorizationServer, signed: bool
) -> None:
    token = provider.token(resource=OPAQUE_RESOURCE, scope="read write")
    assert "." not in token  # opaque
    settings = (
        introspection("resource-server-jwt", jwt_response=True) if signed else introspection()
    )
    with guarded(provider, OPAQUE_RESOURCE, introspection=settings) as (_, url):
        response = httpx.get(url, headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "client_id": "rs256-client",
        "subject": None,
        "issuer": provider.issuer,
        "scopes": ["read", "write"],
        "audience": [OPAQUE_RESOURCE],
        "scheme": "Bearer",
        "jkt": None,
    }


def test_its_opaque_tokens_it_did_not_issue_for_us_are_refused(
    provider: AuthorizationServer,
) -> None:
    other = provider.token(resource=OTHER_OPAQUE_RESOURCE)
    with guarded(provider, OPAQUE_RESOURCE, introspection=introspection()) as (_, url):
        wrong_audience = httpx.get(url, headers=bearer(other))
        unknown = httpx.get(url, headers=bearer("never-issued-" + "x" * 30))
    params = assert_refused(wrong_audience, 401, "invalid_token")
    assert params["error_description"] == "the token is not meant for this resource (aud)"
    params = assert_refused(unknown, 401, "invalid_token")
    assert params["error_description"] == "the token is not active"


def test_a_token_it_revoked_is_refused_once_no_cache_holds_it(
    provider: AuthorizationServer,
) -> None:
    token = provider.token(resource=OPAQUE_RESOURCE)
    settings = introspection(cache_ttl=0)  # every request asks the authorization server
    with guarded(provider, OPAQUE_RESOURCE, introspection=settings) as (_, url):
        assert httpx.get(url, headers=bearer(token)).status_code == 200
        provider.revoke(token)
        refused = httpx.get(url, headers=bearer(token))
    params = assert_refused(refused, 401, "invalid_token")
    assert params["error_description"] == "the token is not active"


def test_credentials_it_refuses_make_introspection_a_503(provider: AuthorizationServer) -> None:
    token = provider.token(resource=OPAQUE_RESOURCE)
    settings = introspection(client_secret="not-the-secret")
    with guarded(provider, OPAQUE_RESOURCE, introspection=settings) as (_, url):
        response = httpx.get(url, headers=bearer(token))
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["error"] == "temporarily_unavailable"
    assert "Traceback" not in response.text


def test_its_dpop_bound_opaque_token_works_with_proofs_from_oauth4webapi(
    provider: AuthorizationServer,
) -> None:
    with guarded(provider, OPAQUE_RESOURCE, introspection=introspection()) as (_, url):
        result = dpop_client(provider, url, resource=OPAQUE_RESOURCE)
        [attempt] = result["attempts"]
        downgraded = httpx.get(url, headers=bearer(result["access_token"]))
    assert attempt["status"] == 200, attempt["body"]
    body = json.loads(attempt["body"])
    assert (body["scheme"], body["jkt"]) == ("DPoP", result["jkt"])
    params = assert_refused(downgraded, 401, "invalid_token")  # RFC 9449 §7.2
    assert "DPoP-bound" in params["error_description"]


def test_auto_format_checks_its_jwts_locally_and_introspects_its_opaque_tokens(
    provider: AuthorizationServer,
) -> None:
    settings = introspection()
    with guarded(
        provider,
        JWT_RESOURCE,
        audiences=[JWT_RESOURCE, OPAQUE_RESOURCE],
        introspection=settings,
        token_format="auto",
    ) as (_, url):
        for resource in (JWT_RESOURCE, OPAQUE_RESOURCE):
            response = httpx.get(url, headers=bearer(provider.token(resource=resource)))
            assert response.status_code == 200, response.text
            assert response.json()["audience"] == [resource]


def test_a_jwt_of_an_issuer_not_ours_is_refused_after_introspection(
    provider: AuthorizationServer,
) -> None:
    # token_format="auto" introspects JWTs of unknown issuers; oidc-provider answers
    # unsupported_token_type for any JWT, which is an inactive token, not an outage.
    foreign = TestIssuer("https://foreign.test").token(audience=OPAQUE_RESOURCE)
    with guarded(provider, OPAQUE_RESOURCE, introspection=introspection()) as (_, url):
        refused = httpx.get(url, headers=bearer(foreign))
    params = assert_refused(refused, 401, "invalid_token")
    assert params["error_description"] == "the token is not active"
