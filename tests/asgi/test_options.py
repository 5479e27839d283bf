"""Options of the guard not covered elsewhere: jwks_uri, scopes_claims, realm."""

from __future__ import annotations

from apps import NOW, RESOURCE, Clock, bearer, client, guard
from support import assert_refused

from oauthguard.testing import TestIssuer

ISSUER = TestIssuer(algorithms=("RS256",))


def test_an_explicit_jwks_uri_skips_discovery() -> None:
    issuer = TestIssuer(algorithms=("RS256",))
    api = client(guard(issuer, Clock(), jwks_uri=issuer.jwks_uri))
    assert (
        api.get("/mcp", headers=bearer(issuer.token(audience=RESOURCE, now=NOW))).status_code == 200
    )
    assert [r.url.path for r in issuer.requests] == ["/jwks"]


def test_scopes_claims_name_where_scopes_are_read() -> None:
    api = client(guard(ISSUER, Clock(), scopes_claims=["permissions"]))
    token = ISSUER.token(
        audience=RESOURCE,
        now=NOW,
        scope="ignored",
        claims={"permissions": ["read", "orders:write"]},
    )
    assert api.get("/mcp", headers=bearer(token)).json()["scopes"] == ["orders:write", "read"]
    assert api.get("/read", headers=bearer(token)).text == "read ok"


def test_the_realm_is_in_every_challenge() -> None:
    api = client(guard(ISSUER, Clock(), realm="orders"))
    assert assert_refused(api.get("/mcp"), 401, None)["realm"] == "orders"
    params = assert_refused(api.get("/mcp", headers=bearer("x.y.z")), 401, "invalid_token")
    assert params["realm"] == "orders"
