"""Scopes and roles from every claim an issuer names: united, by name or dotted path, and a
value that cannot be read with certainty refused (401), never read as fewer."""

from __future__ import annotations

from typing import Any

import pytest
from apps import NOW, RESOURCE, Clock, bearer, client, inner_app
from guards import build_guard
from support import assert_refused

from oauthguard import Issuer
from oauthguard._verify.claims import claim_path
from oauthguard.testing import TestIssuer

ISSUER = TestIssuer("https://idp.test/realms/demo", algorithms=("RS256",))


def api(*issuers: str | Issuer, **options: Any) -> Any:
    return client(
        build_guard(
            inner_app(),
            resource=RESOURCE,
            authorization_servers=list(issuers),
            clock=Clock(),
            http_client=ISSUER.http_client(),
            **options,
        )
    )


def who(app: Any, **claims: Any) -> Any:
    token = ISSUER.token(audience=RESOURCE, now=NOW, claims=claims)
    response = app.get("/mcp", headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("roles", ("roles",)),
        ("cognito:groups", ("cognito:groups",)),
        ("realm_access.roles", ("realm_access", "roles")),
        ("resource_access.orders-api.roles", ("resource_access", "orders-api", "roles")),
        ("https://example.com/roles", ("https://example.com/roles",)),
        ("https://example.com/app.roles", ("https://example.com/app.roles",)),
    ],
)
def test_a_dotted_name_is_a_path_and_a_url_or_plain_name_is_one_claim(
    name: str, path: tuple[str, ...]
) -> None:
    assert claim_path(name) == path


def test_scopes_of_every_claim_are_united() -> None:
    app = api(Issuer(ISSUER.issuer, scopes_claims=("scope", "permissions")))
    body = who(app, scope="read", permissions=["orders:write", "orders:read"])
    assert body["scopes"] == ["orders:read", "orders:write", "read"]
    assert who(app, permissions=["orders:write"])["scopes"] == ["orders:write"]


def test_the_default_scope_claims_scope_and_scp_are_united_too() -> None:
    assert who(api(ISSUER.issuer), scope="a b", scp=["c"])["scopes"] == ["a", "b", "c"]


def test_jwt_defaults_apply_to_plain_urls_and_an_issuer_overrides_them() -> None:
    plain = api(ISSUER.issuer, scopes_claims=("perms",), roles_claims=("groups",))
    body = who(plain, perms="x", scope="y", groups=["admin"])
    assert (body["scopes"], body["roles"]) == (["x"], ["admin"])
    own = api(Issuer(ISSUER.issuer, roles_claims=("roles",)), roles_claims=("groups",))
    body = who(own, roles=["clerk"], groups=["admin"])
    assert body["roles"] == ["clerk"]


def test_roles_are_read_from_nested_paths_and_united() -> None:
    app = api(
        Issuer(
            ISSUER.issuer,
            roles_claims=("realm_access.roles", "resource_access.orders-api.roles", "roles"),
        )
    )
    body = who(
        app,
        realm_access={"roles": ["offline_access", "user"]},
        resource_access={"orders-api": {"roles": ["clerk"]}, "other": {"roles": ["x"]}},
        roles="admin support",
    )
    assert body["roles"] == ["admin", "clerk", "offline_access", "support", "user"]


def test_a_namespaced_url_claim_holds_roles() -> None:
    app = api(Issuer(ISSUER.issuer, roles_claims=("https://example.com/roles",)))
    assert who(app, **{"https://example.com/roles": ["editor"]})["roles"] == ["editor"]


def test_a_role_may_hold_spaces_but_is_matched_whole() -> None:
    app = api(Issuer(ISSUER.issuer, roles_claims=("realm_access.roles",)))
    assert who(app, realm_access={"roles": ["order clerk"]})["roles"] == ["order clerk"]


def test_an_absent_claim_or_path_gives_no_roles() -> None:
    app = api(Issuer(ISSUER.issuer, roles_claims=("realm_access.roles", "groups")))
    assert who(app)["roles"] == []
    assert who(app, realm_access={})["roles"] == []


def test_without_roles_claims_no_roles_are_read() -> None:
    assert who(api(ISSUER.issuer), roles=["admin"])["roles"] == []


@pytest.mark.parametrize(
    ("claims", "described"),
    [
        ({"realm_access": ["admin"]}, "realm_access claim is not an object"),
        ({"realm_access": {"roles": "bad\troles"}}, "realm_access.roles claim is malformed"),
        ({"realm_access": {"roles": [1]}}, "realm_access.roles claim is neither"),
        ({"realm_access": {"roles": [""]}}, "realm_access.roles claim is neither"),
        ({"realm_access": {"roles": ["a\nb"]}}, "realm_access.roles claim is neither"),
        ({"realm_access": {"roles": {"admin": True}}}, "realm_access.roles claim is neither"),
        ({"permissions": ["ok", "not ok"]}, "permissions claim is malformed"),
        ({"permissions": 7}, "permissions claim is neither"),
        ({"scope": "read", "permissions": ['"quoted"']}, "permissions claim is malformed"),
    ],
)
def test_a_value_that_cannot_be_read_is_refused_never_read_as_fewer(
    claims: dict[str, Any], described: str
) -> None:
    app = api(
        Issuer(
            ISSUER.issuer,
            scopes_claims=("scope", "permissions"),
            roles_claims=("realm_access.roles",),
        )
    )
    token = ISSUER.token(audience=RESOURCE, now=NOW, claims=claims)
    params = assert_refused(app.get("/mcp", headers=bearer(token)), 401, "invalid_token")
    assert described in params["error_description"]
