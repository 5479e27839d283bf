"""RFC 6749 §3.3: a scope is scope-tokens (``%x21 / %x23-5B / %x5D-7E``) separated by SP.

Nothing else separates: ``files:read<U+2028>admin`` is one malformed scope, never ``files:read``
and ``admin``. A token whose scope cannot be read so is refused (401 invalid_token); a
configured scope that is no scope-token is a ``ConfigurationError`` naming it. Empty items
from repeated, leading or trailing SP are dropped, everywhere alike.
"""

from __future__ import annotations

import base64
import time
from typing import Any

import guards
import httpx
import pytest
from apps import NOW, RESOURCE, Clock, bearer, guard
from inprocess import InProcessClient
from introspection_server import IntrospectionServer, active, guarded
from starlette.applications import Starlette
from support import assert_refused

from oauthguard import ConfigurationError, OAuthGuard, require
from oauthguard._wire.tokens import (
    MalformedScope,
    is_scope_string,
    is_scope_token,
    parse_scope,
    split_scope,
)
from oauthguard.testing import TestIssuer

# Characters str.split() treats as whitespace, or the grammar excludes, inside one scope.
NOT_SEPARATORS = {
    "TAB": "\t",
    "LF": "\n",
    "CR": "\r",
    "VT": "\x0b",
    "FF": "\x0c",
    "U+001C": "\x1c",
    "U+001F": "\x1f",
    "U+0085": "\x85",
    "NBSP": "\xa0",
    "U+1680": "\u1680",
    "U+2000": "\u2000",
    "U+2028": "\u2028",
    "U+2029": "\u2029",
    "U+202F": "\u202f",
    "U+3000": "\u3000",
    "NUL": "\x00",
    "DEL": "\x7f",
    "quote": '"',
    "backslash": "\\",
}
ISSUER = TestIssuer("https://issuer.test", algorithms=("RS256",))


def token_with(**claims: Any) -> str:
    return ISSUER.token(audience=RESOURCE, now=NOW, claims=claims)


def admin_api() -> InProcessClient:
    return InProcessClient(guard(ISSUER, Clock(), rules={"/mcp": require("admin")}))


# -- the parser ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "scopes"),
    [
        ("", set()),
        ("read", {"read"}),
        ("read write", {"read", "write"}),
        ("read  write", {"read", "write"}),
        (" read write ", {"read", "write"}),
        ("a:b/c!#$%&'()*+,-.[]^_`{|}~", {"a:b/c!#$%&'()*+,-.[]^_`{|}~"}),
        (["read", "write"], {"read", "write"}),
        ([], set()),
    ],
)
def test_scopes_are_scope_tokens_split_on_sp(value: Any, scopes: set[str]) -> None:
    assert parse_scope(value) == scopes


def test_scope_tokens_are_exactly_the_characters_of_the_grammar() -> None:
    grammar = {0x21, *range(0x23, 0x5C), *range(0x5D, 0x7F)}  # %x21 / %x23-5B / %x5D-7E
    assert {c for c in range(0x110000) if is_scope_token(chr(c))} == grammar
    assert {c for c in range(0x110000) if is_scope_string(chr(c))} == grammar | {0x20}


@pytest.mark.parametrize("char", NOT_SEPARATORS.values(), ids=NOT_SEPARATORS.keys())
def test_no_other_character_separates_or_passes(char: str) -> None:
    assert split_scope(f"read{char}admin") == [f"read{char}admin"]
    for value in (f"read{char}admin", f"write read{char}admin", [f"read{char}admin"]):
        with pytest.raises(MalformedScope) as refused:
            parse_scope(value)
        assert refused.value.item == f"read{char}admin"


@pytest.mark.parametrize("item", ["read write", "", 7, None, ["read"]])
def test_an_array_item_that_is_not_one_scope_token_is_malformed(item: Any) -> None:
    with pytest.raises(MalformedScope):
        parse_scope(["read", item])


# -- JWT access tokens through the guard ---------------------------------------------------
@pytest.mark.parametrize("char", NOT_SEPARATORS.values(), ids=NOT_SEPARATORS.keys())
@pytest.mark.parametrize("claim", ["scope", "scp"])
def test_a_jwt_scope_with_another_separator_is_refused(claim: str, char: str) -> None:
    claims: dict[str, Any] = {"scope": None, claim: f"files:read{char}admin"}
    value = token_with(**claims)
    params = assert_refused(admin_api().get("/mcp", headers=bearer(value)), 401, "invalid_token")
    assert params["error_description"] == f"the token's {claim} claim is malformed"


@pytest.mark.parametrize("char", ["\u2028", "\t", " ", '"'])
def test_a_jwt_scope_array_item_outside_the_grammar_is_refused(char: str) -> None:
    value = token_with(scope=None, scp=["files:read", f"files:read{char}admin"])
    params = assert_refused(admin_api().get("/mcp", headers=bearer(value)), 401, "invalid_token")
    assert params["error_description"] == "the token's scp claim is malformed"


@pytest.mark.parametrize("value", [7, {"admin": True}, [7], ["admin", None], True])
def test_a_jwt_scope_of_another_type_is_refused(value: Any) -> None:
    token = token_with(scope=value)
    assert_refused(admin_api().get("/mcp", headers=bearer(token)), 401, "invalid_token")


def test_a_malformed_scope_claim_does_not_fall_back_to_scp() -> None:
    value = token_with(scope="files:read\u2028admin", scp="admin")
    assert_refused(admin_api().get("/mcp", headers=bearer(value)), 401, "invalid_token")


@pytest.mark.parametrize("scope", ["files:read admin", " admin  files:read ", "admin"])
def test_sp_separated_scopes_pass_and_reach_the_app(scope: str) -> None:
    response = admin_api().get("/mcp", headers=bearer(token_with(scope=scope)))
    assert response.status_code == 200, response.text
    assert "admin" in response.json()["scopes"]
    assert "" not in response.json()["scopes"]


def test_a_well_formed_scope_without_the_one_needed_is_insufficient() -> None:
    value = token_with(scope="files:read files:admin")
    assert_refused(admin_api().get("/mcp", headers=bearer(value)), 403, "insufficient_scope")


# -- introspection answers -----------------------------------------------------------------
@pytest.mark.anyio
@pytest.mark.parametrize("char", ["\u2028", "\t", "\xa0", "\u3000", "\\"])
async def test_an_introspected_scope_with_another_separator_is_refused(
    server: IntrospectionServer, char: str
) -> None:
    active(server, "opaque-1", time.time(), scope=f"files:read{char}admin")
    async with guarded(server) as (api, _):
        response = await api.get("/mcp", headers=bearer("opaque-1"))
    params = assert_refused(response, 401, "invalid_token")
    assert params["error_description"] == "the token's scope claim is malformed"


@pytest.mark.anyio
async def test_an_introspected_scope_split_on_sp_passes(server: IntrospectionServer) -> None:
    active(server, "opaque-1", time.time(), scope="files:read  admin")
    async with guarded(server) as (api, _):
        response = await api.get("/mcp", headers=bearer("opaque-1"))
    assert response.status_code == 200
    assert response.json()["scopes"] == ["admin", "files:read"]


# -- configuration -------------------------------------------------------------------------
def build_guard(**options: Any) -> OAuthGuard:
    return guards.build_guard(
        Starlette(), resource=RESOURCE, authorization_servers=[ISSUER.issuer], **options
    )


@pytest.mark.parametrize("char", NOT_SEPARATORS.values(), ids=NOT_SEPARATORS.keys())
def test_a_configured_scope_outside_the_grammar_is_refused_by_name(char: str) -> None:
    # Imported here: the MCP SDK costs every worker ~0.7 s while it collects this module.
    from oauthguard.mcp import MCPAuth

    scope = f"files:read{char}admin"
    attempts = {
        "require": lambda: require(scope),
        "any_scopes": lambda: require(any_scopes=["write", scope]),
        "scope_implies value": lambda: build_guard(scope_implies={"files:read": scope}),
        "scope_implies key": lambda: build_guard(scope_implies={scope: ["files:read"]}),
        "scopes_supported": lambda: build_guard(scopes_supported=["read", scope]),
        "scopes_supported string": lambda: build_guard(scopes_supported=f"read {scope}"),
        "tool_scopes": lambda: MCPAuth(Starlette(), tool_scopes={"delete": scope}),
    }
    for name, attempt in attempts.items():
        with pytest.raises(ConfigurationError) as refused:
            attempt()
        assert repr(scope) in str(refused.value), name


def test_configured_scope_strings_are_split_on_sp_only() -> None:
    assert require(" read  write ").scopes == ("read", "write")
    guard_ = build_guard(scopes_supported="read  write", scope_implies={"admin": "read write"})
    assert guard_.metadata.scopes_supported == ("read", "write")
    assert guard_.implies["admin"] == {"read", "write"}


# -- TestIssuer ----------------------------------------------------------------------------
@pytest.mark.anyio
@pytest.mark.parametrize("char", ["\u2028", "\t", "\xa0"])
async def test_the_test_issuer_refuses_a_requested_scope_outside_the_grammar(char: str) -> None:
    issuer = TestIssuer("https://issuer.test")
    issuer.register_client(client_id="svc", client_secret="s3cret")
    secret = base64.b64encode(b"svc:s3cret").decode()
    async with httpx.AsyncClient(transport=issuer.transport(), base_url=issuer.issuer) as http:
        response = await http.post(
            "/token",
            headers={"Authorization": f"Basic {secret}"},
            data={"grant_type": "client_credentials", "scope": f"read{char}admin"},
        )
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_scope"
        fine = await http.post(
            "/token",
            headers={"Authorization": f"Basic {secret}"},
            data={"grant_type": "client_credentials", "scope": "read  admin"},
        )
        assert fine.status_code == 200, fine.text
