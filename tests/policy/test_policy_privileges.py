"""require(roles=, clients=, claims=): what each argument accepts, how claims compare, what
a miss says, and the order of the checks. The checks run on ``AccessToken`` values here;
the HTTP answers are in test_policy_roles.py."""

from __future__ import annotations

import enum
from typing import Any

import pytest

from oauthguard import (
    AccessToken,
    ConfigurationError,
    InsufficientScope,
    InsufficientUserAuthentication,
    InvalidToken,
    require,
)
from oauthguard._policy import Requirement

NOW = 1_800_000_000.0
RESOURCE = "https://api.test/"


def token(
    scopes: str = "",
    *,
    roles: tuple[str, ...] = (),
    client_id: str | None = "app",
    audience: str = RESOURCE,
    **claims: Any,
) -> AccessToken:
    return AccessToken(
        "user-1",
        client_id,
        frozenset(scopes.split()),
        (audience,),
        "https://issuer.test",
        None,
        claims,
        roles=frozenset(roles),
    )


def refusal(requirement: Requirement, checked: AccessToken) -> InsufficientScope:
    with pytest.raises(InsufficientScope) as refused:
        requirement.check(checked, now=NOW)
    return refused.value


# -- arguments -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"roles": ""}, "roles: ''"),
        ({"roles": [""]}, "roles: ''"),
        ({"roles": ["admin", 7]}, "roles: 7"),
        ({"roles": [" admin"]}, "roles: ' admin'"),
        ({"roles": "ad\nmin"}, "roles: 'ad\\nmin'"),
        ({"roles": "admin clerk"}, "['admin', 'clerk']"),  # a list, as the fix
        ({"roles": 7}, "roles must be a string or a list of strings, got int"),
        ({"roles": b"admin"}, "roles must be a string or a list of strings, got bytes"),
        ({"roles": {"admin": True}}, "roles must be a string or a list of strings, got dict"),
        ({"clients": 42}, "clients must be a string or a list of strings, got int"),
        ({"clients": ["app", None]}, "clients: None"),
        ({"clients": ""}, "clients: ''"),
        ({"claims": "tenant=acme"}, "claims must be a dict"),
        ({"claims": [("tenant", "acme")]}, "claims must be a dict"),
        ({"claims": {"": "x"}}, "claims: the key ''"),
        ({"claims": {1: "x"}}, "claims: the key 1"),
        ({"claims": {"a..b": "x"}}, "claims: 'a..b' has an empty segment"),
        ({"claims": {".a": "x"}}, "claims: '.a' has an empty segment"),
        ({"claims": {"tenant": {"id": "acme"}}}, "claims['tenant']: {'id': 'acme'} is an object"),
        ({"claims": {"tenant": None}}, "claims['tenant']: None is null"),
        ({"claims": {"tenant": ""}}, "claims['tenant']: '' is empty"),
        ({"claims": {"tenant": []}}, "claims['tenant'] is empty"),
        ({"claims": {"tenant": ["a", ["b"]]}}, "claims['tenant']: ['b'] is not a string"),
        ({"claims": {"tenant": b"acme"}}, "claims['tenant']: b'acme' is not a string"),
        ({"claims": {"level": float("nan")}}, "claims['level']: nan is not a JSON number"),
        ({"claims": {"level": float("inf")}}, "claims['level']: inf is not a JSON number"),
        ({"claims": {"level": 2**53}}, "RFC 7493 §2.2"),
    ],
)
def test_every_bad_argument_is_a_configuration_error_naming_it(
    arguments: dict[str, Any], named: str
) -> None:
    with pytest.raises(ConfigurationError) as error:
        require(**arguments)
    assert named in str(error.value)


def test_good_arguments_are_kept_in_order_once_each() -> None:
    requirement = require(
        "read",
        roles=["admin", "order admin", "admin"],  # in a list, a role may hold a space
        clients="app",
        claims={"tenant": "acme", "groups": ["a", "b"], "level": 2, "beta": True},
    )
    assert requirement.roles == ("admin", "order admin")
    assert requirement.clients == ("app",)
    assert requirement.claims == {
        "tenant": ("acme",),
        "groups": ("a", "b"),
        "level": (2,),
        "beta": (True,),
    }
    assert repr(requirement) == (
        "require('read', roles=('admin', 'order admin'), clients=('app',), claims={'tenant': "
        "('acme',), 'groups': ('a', 'b'), 'level': (2,), 'beta': (True,)})"
    )
    assert require(roles=[], clients=(), claims={}).roles == ()  # nothing asked, nothing needed


# -- roles and clients -----------------------------------------------------------------------
def test_roles_every_one_and_the_description_names_the_missing_ones() -> None:
    requirement = require(roles=["admin", "clerk", "auditor"])
    requirement.check(token(roles=("admin", "clerk", "auditor", "x")), now=NOW)
    error = refusal(requirement, token(roles=("clerk",)))
    assert error.status == 403 and error.error == "insufficient_scope"
    assert error.description == "the token lacks the roles 'admin', 'auditor'"
    assert error.params == {"scope": ""}  # no scope: none grants a role
    assert refusal(require(roles="admin"), token()).description == (
        "the token lacks the role 'admin'"
    )


def test_a_role_is_matched_whole_and_by_case() -> None:
    for roles in (("Admin",), ("admin ",), ("administrator",), ("admin clerk",)):
        refusal(require(roles="admin"), token(roles=roles))


def test_a_token_whose_roles_are_not_a_set_is_an_error_not_a_pass() -> None:
    broken = AccessToken("u", "app", frozenset(), (RESOURCE,), None, None, {}, roles="admin")  # type: ignore[arg-type]
    with pytest.raises(TypeError):  # the guard answers 503 (test_policy_roles.py)
        require(roles="adm").check(broken, now=NOW)


def test_clients_any_one_and_the_description_names_the_client() -> None:
    requirement = require(clients=["web", "cli"])
    requirement.check(token(client_id="cli"), now=NOW)
    error = refusal(requirement, token(client_id="other"))
    assert error.description == "the token's client 'other' is not one of 'web', 'cli'"
    assert error.params == {"scope": ""}
    assert refusal(requirement, token(client_id=None)).description == (
        "the token names no client (client_id, azp, cid or appid); this operation is for "
        "'web', 'cli'"
    )
    refusal(requirement, token(client_id="WEB"))


def test_the_description_is_bounded_and_escapes_what_the_token_says() -> None:
    client = 'evil"\r\nSet-Cookie: x=1' + "\\" + "é" * 200
    description = refusal(require(clients="app"), token(client_id=client)).description
    assert description.isascii() and description.isprintable()
    assert len(description) < 200
    assert "\\r\\n" in description and "..." in description
    many = [f"role-{n}" for n in range(40)]
    description = refusal(require(roles=many), token()).description
    assert description.endswith("'role-4' and 35 more")


# -- claims ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("expected", "claim", "met"),
    [
        ("acme", "acme", True),
        ("acme", "Acme", False),
        ("acme", ["x", "acme"], True),  # an array holds it
        ("acme", "x acme", False),  # a string is compared whole, never split
        ("acme", {"acme": True}, False),  # an object where a value or an array is expected
        ("acme", [["acme"]], False),  # a nested array's items are not the claim's
        ("acme", [{"name": "acme"}], False),
        ("1", 1, False),  # "1" is never 1
        (1, "1", False),
        (1, True, False),  # True is never 1
        (True, 1, False),
        (1, [True], False),
        (False, 0, False),
        (True, True, True),
        (False, [False], True),
        (2, 2, True),
        (2, 2.0, True),  # one number type, as in JSON
        (2.5, 2.5, True),
        (2, 3, False),
        (2, None, False),
        (["a", "b"], ["b", "c", "a"], True),  # a list of values: every one
        (["a", "b"], ["a", "c"], False),
        (["a", "b"], "a", False),
        (["a"], "a", True),
    ],
)
def test_claims_compare_by_json_type_and_value(expected: Any, claim: Any, met: bool) -> None:
    requirement = require(claims={"tenant": expected})
    checked = token(tenant=claim)
    if met:
        requirement.check(checked, now=NOW)
    else:
        error = refusal(requirement, checked)
        assert error.description.startswith("the token's claim 'tenant' does not hold ")
        assert error.params == {"scope": ""}


def test_enum_values_compare_as_the_json_values_they_stand_for() -> None:
    class Plan(enum.StrEnum):
        PRO = "pro"

    class Level(enum.IntEnum):
        TWO = 2

    requirement = require(claims={"plan": Plan.PRO, "level": Level.TWO})
    assert requirement.claims == {"plan": ("pro",), "level": (2,)}
    assert type(requirement.claims["plan"][0]) is str
    requirement.check(token(plan="pro", level=2), now=NOW)
    refusal(requirement, token(plan="pro", level=True))


def test_an_absent_claim_is_named() -> None:
    assert refusal(require(claims={"tenant": "acme"}), token()).description == (
        "the token has no claim 'tenant'"
    )
    description = refusal(require(claims={"level": 1, "beta": True}), token(level="1")).description
    assert description == (
        "the token's claim 'level' does not hold 1; the token has no claim 'beta'"
    )


def test_a_dotted_name_is_a_path_into_nested_objects() -> None:
    requirement = require(claims={"resource_access.orders-api.roles": "clerk"})
    nested = {"orders-api": {"roles": ["clerk"]}}
    requirement.check(token(resource_access=nested), now=NOW)
    for access in (
        {"orders-api": {"roles": ["admin"]}},
        {"orders-api": ["roles"]},  # an array where an object is expected
        {"orders-api": "roles"},
        "orders-api.roles",
        ["orders-api"],
    ):
        refusal(requirement, token(resource_access=access))
    # The path is the only reading: a top-level claim named with the dots does not count.
    refusal(requirement, token(**{"resource_access.orders-api.roles": ["clerk"]}))


def test_a_name_with_a_scheme_is_literal() -> None:
    name = "https://example.com/app.roles"  # Auth0 namespaced claims
    requirement = require(claims={name: "clerk"})
    requirement.check(token(**{name: ["clerk"]}), now=NOW)
    refusal(requirement, token(**{"https://example": {"com/app": {"roles": ["clerk"]}}}))


# -- order and challenges --------------------------------------------------------------------
def test_with_scopes_missing_too_the_challenge_names_the_scopes() -> None:
    requirement = require("orders:write", roles="clerk")
    error = refusal(requirement, token("orders:read"))
    assert error.description == (
        "this operation needs the scopes: orders:write; the token lacks the role 'clerk'"
    )
    assert error.params == {"scope": "orders:write"}
    only_role = refusal(requirement, token("orders:write"))
    assert only_role.params == {"scope": ""}
    only_scope = refusal(requirement, token("orders:read", roles=("clerk",)))
    assert only_scope.description == "this operation needs the scopes: orders:write"
    assert only_scope.params == {"scope": "orders:write"}


def test_the_order_audience_then_privileges_then_step_up_then_scopes() -> None:
    requirement = require(
        "orders:write",
        audience="https://other.test/",
        acr_values="urn:mfa",
        roles="clerk",
    )
    other = "https://other.test/"
    with pytest.raises(InvalidToken):  # not for this resource at all
        requirement.check(token(), now=NOW)
    # A role no step-up grants comes before the step-up the user would go through in vain.
    assert refusal(requirement, token(audience=other)).params == {"scope": "orders:write"}
    with pytest.raises(InsufficientUserAuthentication):
        requirement.check(token(audience=other, roles=("clerk",)), now=NOW)
    # The step-up before the scopes, as before: both a client can recover from.
    stepped = token(audience=other, roles=("clerk",), acr="urn:mfa")
    assert refusal(requirement, stepped).description == (
        "this operation needs the scopes: orders:write"
    )
    requirement.check(
        token("orders:write", audience=other, roles=("clerk",), acr="urn:mfa"), now=NOW
    )


def test_all_of_combines_roles_clients_and_claims() -> None:
    combined = Requirement.all_of(
        [
            require("a", roles="x", clients=["web", "cli"], claims={"tier": "gold"}),
            require("b", roles="y", clients=["cli", "bot"], claims={"tier": "beta"}),
        ]
    )
    assert combined.scopes == ("a", "b") and combined.roles == ("x", "y")
    combined.check(token("a b", roles=("x", "y"), client_id="cli", tier=["gold", "beta"]), now=NOW)
    for refused in (
        token("a b", roles=("x",), client_id="cli", tier=["gold", "beta"]),
        token("a b", roles=("x", "y"), client_id="web", tier=["gold", "beta"]),  # not in both
        token("a b", roles=("x", "y"), client_id="cli", tier="gold"),
        token("a", roles=("x", "y"), client_id="cli", tier=["gold", "beta"]),
    ):
        refusal(combined, refused)
    assert (
        "the token's client 'web' is not one of 'cli', 'bot'"
        in refusal(
            combined, token("a b", roles=("x", "y"), client_id="web", tier=["gold", "beta"])
        ).description
    )
    # A True and a 1 needed by two tools stay two needs.
    both = Requirement.all_of([require(claims={"f": True}), require(claims={"f": 1})])
    refusal(both, token(f=True))
    refusal(both, token(f=1))
    for other in (require(max_age=0), require(acr_values="urn:mfa"), require(any_scopes="a")):
        with pytest.raises(ConfigurationError):
            Requirement.all_of([require("a"), other])
