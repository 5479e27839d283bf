"""DPoP in the guard: binding (RFC 9449 §6, §7.1), schemes and challenges (§7.1, §7.2),
RFC 9728 metadata, the header rules, and the verified-token cache."""

from __future__ import annotations

import json

import pytest
from dpop_setup import RESOURCE, Clock, Setup
from guards import build_guard
from proofs import ClientKey
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient, WebSocketDenialResponse
from starlette.websockets import WebSocket
from support import assert_refused, challenge

from oauthguard import AccessToken, ConfigurationError
from oauthguard._jose.b64 import b64url_decode
from oauthguard._wire.challenge import parse_challenges
from oauthguard.testing import DPoPKey, TestIssuer
from oauthguard.testing._keys import sign_jws

pytestmark = pytest.mark.anyio
METADATA = "https://api.test/.well-known/oauth-protected-resource/mcp"


async def test_a_token_bound_to_another_key_is_refused_as_invalid_token() -> None:
    setup = Setup()
    token = setup.issuer.token(
        audience=RESOURCE, alg="ES256", now=setup.clock.now, jkt=ClientKey().thumbprint
    )
    params = assert_refused(
        await setup.call(token, setup.proof(token)), 401, "invalid_token", scheme="DPoP"
    )
    assert params["error_description"] == "invalid DPoP key binding"
    assert params["algs"] == "ES256 EdDSA RS256 PS256"


async def test_a_dpop_scheme_token_without_cnf_is_refused() -> None:
    setup = Setup()
    token = setup.token(bound=False)
    params = assert_refused(
        await setup.call(token, setup.proof(token)), 401, "invalid_token", scheme="DPoP"
    )
    assert "cnf.jkt" in params["error_description"]


async def test_a_bound_token_sent_as_bearer_is_refused() -> None:
    setup = Setup()
    token = setup.token()
    params = assert_refused(
        await setup.call(token, None, scheme="Bearer"), 401, "invalid_token", scheme="Bearer"
    )
    assert "DPoP-bound" in params["error_description"]
    assert "error" not in challenge(await setup.call(token, None, scheme="Bearer"))["DPoP"]


async def test_an_unbound_bearer_token_passes_when_dpop_is_allowed() -> None:
    setup = Setup()
    token = setup.token(bound=False)
    response = await setup.call(token, None, scheme="Bearer")
    assert response.status_code == 200
    assert response.json()["scheme"] == "Bearer"


async def test_a_cached_token_still_needs_a_good_proof_every_time() -> None:
    setup = Setup()
    token = setup.token()
    async with setup.client() as client:
        assert (await setup.call(token, setup.proof(token), client=client)).status_code == 200
        fetches = len(setup.issuer.requests)
        for proof in (
            None,
            setup.proof(token, method="POST"),
            ClientKey().proof("GET", "https://api.test/mcp", now=setup.clock.now, token=token),
        ):
            response = await setup.call(token, proof, client=client)
            assert_refused(response, 401, response.json()["error"], scheme="DPoP")
            assert response.json()["error"] in ("invalid_dpop_proof", "invalid_token")
        bearer = await setup.call(token, None, scheme="Bearer", client=client)
        assert_refused(bearer, 401, "invalid_token", scheme="Bearer")
        assert (await setup.call(token, setup.proof(token), client=client)).status_code == 200
        assert len(setup.issuer.requests) == fetches  # every check above used the cache


async def test_two_dpop_headers_are_refused() -> None:
    setup = Setup()
    token = setup.token()
    good = setup.proof(token)
    params = assert_refused(
        await setup.call(token, [good, setup.proof(token)]),
        401,
        "invalid_dpop_proof",
        scheme="DPoP",
    )
    assert "more than one DPoP header" in params["error_description"]
    assert (await setup.call(token, good)).status_code == 200  # nothing was recorded


async def test_a_comma_joined_dpop_header_is_refused() -> None:
    setup = Setup()
    token = setup.token()
    joined = f"{setup.proof(token)}, {setup.proof(token)}"
    params = assert_refused(
        await setup.call(token, joined), 401, "invalid_dpop_proof", scheme="DPoP"
    )
    assert "more than one value" in params["error_description"]


async def test_the_dpop_scheme_without_a_proof_is_refused() -> None:
    setup = Setup()
    token = setup.token()
    params = assert_refused(await setup.call(token, None), 401, "invalid_dpop_proof", scheme="DPoP")
    assert "needs a DPoP header" in params["error_description"]


async def test_bearer_with_a_dpop_proof_is_ambiguous() -> None:
    setup = Setup()
    token = setup.token(bound=False)
    response = await setup.call(token, setup.proof(token), scheme="Bearer")
    assert_refused(response, 400, "invalid_request", scheme="Bearer")
    assert_refused(response, 400, "invalid_request", scheme="DPoP")


async def test_two_authorization_schemes_are_ambiguous() -> None:
    setup = Setup()
    token = setup.token()
    response = await setup.call(
        token, setup.proof(token), headers=[("authorization", f"Bearer {token}")]
    )
    assert_refused(response, 400, "invalid_request", scheme="Bearer")
    assert_refused(response, 400, "invalid_request", scheme="DPoP")


async def test_no_credentials_get_bearer_then_dpop_challenges_without_error() -> None:
    setup = Setup()
    async with setup.client() as client:
        response = await client.get("/mcp")
    assert response.status_code == 401
    assert parse_challenges(response.headers["www-authenticate"]) == [
        ("Bearer", {"resource_metadata": METADATA}),
        ("DPoP", {"algs": "ES256 EdDSA RS256 PS256", "resource_metadata": METADATA}),
    ]
    assert response.headers["www-authenticate"].startswith("Bearer resource_metadata=")
    exposed = response.headers["access-control-expose-headers"]
    assert "WWW-Authenticate" in exposed and "DPoP-Nonce" in exposed


async def test_required_refuses_bearer_and_challenges_with_dpop_only() -> None:
    setup = Setup(dpop="required", dpop_algorithms=("ES256", "EdDSA"))
    async with setup.client() as client:
        response = await client.get("/mcp")
    assert parse_challenges(response.headers["www-authenticate"]) == [
        ("DPoP", {"algs": "ES256 EdDSA", "resource_metadata": METADATA})
    ]
    token = setup.token(bound=False)
    params = assert_refused(
        await setup.call(token, None, scheme="Bearer"), 401, "invalid_token", scheme="DPoP"
    )
    assert "only DPoP" in params["error_description"]
    bound = setup.token()
    assert (await setup.call(bound, setup.proof(bound))).status_code == 200


async def test_disabled_ignores_the_dpop_scheme_and_keeps_bearer() -> None:
    setup = Setup(dpop="disabled")
    token = setup.token()
    response = await setup.call(token, setup.proof(token))
    assert response.status_code == 401
    assert parse_challenges(response.headers["www-authenticate"]) == [
        ("Bearer", {"resource_metadata": METADATA})
    ]
    # A bound token is still refused as a bearer token (RFC 9449 §7.2).
    assert_refused(await setup.call(token, None, scheme="Bearer"), 401, "invalid_token")
    unbound = setup.token(bound=False)
    ok = await setup.call(unbound, setup.proof(unbound), scheme="Bearer")
    assert ok.status_code == 200


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("allowed", {"dpop_signing_alg_values_supported": ["ES256", "EdDSA", "RS256", "PS256"]}),
        (
            "required",
            {
                "dpop_signing_alg_values_supported": ["ES256", "EdDSA", "RS256", "PS256"],
                "dpop_bound_access_tokens_required": True,
            },
        ),
        ("disabled", {}),
    ],
)
async def test_metadata_describes_dpop(mode: str, expected: dict[str, object]) -> None:
    setup = Setup(dpop=mode)
    async with setup.client() as client:
        document = (await client.get("/.well-known/oauth-protected-resource/mcp")).json()
    dpop_fields = {k: v for k, v in document.items() if k.startswith("dpop_")}
    assert dpop_fields == expected


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"dpop": "yes"}, r"DPoP\(mode=...\) must be"),
        ({"dpop_algorithms": ("HS256",)}, r"DPoP\(algorithms=...\)"),
        ({"dpop_algorithms": ("none",)}, r"DPoP\(algorithms=...\)"),
        ({"dpop_algorithms": ()}, r"DPoP\(algorithms=...\)"),
        ({"dpop_max_age": 0}, r"DPoP\(max_age=...\)"),
        ({"dpop_max_age": True}, r"DPoP\(max_age=...\)"),
        ({"dpop_nonce": True}, "DPoPNonces"),
        ({"replay_store": object()}, "first_use"),
        ({"trusted_proxies": ["10.0.0.0/8", "proxy.internal"]}, "trusted_proxies"),
    ],
)
def test_bad_dpop_settings_are_configuration_errors(
    options: dict[str, object], message: str
) -> None:
    async def app(scope: object, receive: object, send: object) -> None: ...

    with pytest.raises(ConfigurationError, match=message):
        build_guard(app, resource=RESOURCE, authorization_servers="https://issuer.test", **options)  # type: ignore[arg-type]


async def test_the_testing_dpop_key_makes_proofs_the_guard_accepts() -> None:
    clock = Clock()
    issuer = TestIssuer(algorithms=("ES256",))
    setup = Setup(issuer=issuer, clock=clock)
    key = DPoPKey()
    token = issuer.token(audience=RESOURCE, alg="ES256", now=clock.now, jkt=key.thumbprint)
    proof = key.proof("GET", "https://api.test/mcp", token=token, now=clock.now)
    response = await setup.call(token, proof)
    assert response.status_code == 200, response.text
    assert response.json()["jkt"] == key.thumbprint


def test_a_websocket_handshake_is_checked_as_a_get() -> None:
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json({"scheme": websocket.scope["auth"].scheme})
        await websocket.close()

    clock, issuer, key = Clock(), TestIssuer(algorithms=("ES256",)), ClientKey()
    app = Starlette(routes=[WebSocketRoute("/ws", echo)])
    app.add_middleware(
        build_guard,
        resource=RESOURCE,
        authorization_servers=issuer.issuer,
        http_client=issuer.http_client(),
        clock=clock,
    )
    token = issuer.token(audience=RESOURCE, alg="ES256", now=clock.now, jkt=key.thumbprint)
    client = TestClient(app, base_url="https://api.test")
    proof = key.proof("GET", "https://api.test/ws", now=clock.now, token=token)
    headers = {"authorization": f"DPoP {token}", "dpop": proof}
    with client.websocket_connect("wss://api.test/ws", headers=headers) as websocket:
        assert websocket.receive_json() == {"scheme": "DPoP"}
    with pytest.raises(WebSocketDenialResponse) as denied:  # the same proof again: a replay
        client.websocket_connect("wss://api.test/ws", headers=headers).__enter__()
    params = assert_refused(denied.value, 401, "invalid_dpop_proof", scheme="DPoP")
    assert "already used" in params["error_description"]


class IntrospectedVerifier:
    """What an introspecting verifier returns for an RFC 9449 §6.2 response."""

    def __init__(self, claims: dict[str, object], jkt: str | None) -> None:
        self.claims, self.jkt = claims, jkt

    async def verify(self, token: str) -> AccessToken:
        return AccessToken(
            subject="user-1",
            client_id="c",
            scopes=frozenset(),
            audience=(),
            issuer="https://issuer.test",
            expires_at=None,
            claims=self.claims,
            jkt=self.jkt,
        )


async def test_an_introspected_dpop_token_type_is_refused_as_bearer() -> None:
    setup = Setup(verifier=IntrospectedVerifier({"active": True, "token_type": "DPoP"}, None))
    params = assert_refused(
        await setup.call("opaque-token", None, scheme="Bearer"),
        401,
        "invalid_token",
        scheme="Bearer",
    )
    assert "DPoP-bound" in params["error_description"]
    plain = Setup(verifier=IntrospectedVerifier({"active": True, "token_type": "Bearer"}, None))
    assert (await plain.call("opaque-token", None, scheme="Bearer")).status_code == 200


async def test_an_introspected_cnf_jkt_binds_the_token() -> None:
    key = ClientKey()
    setup = Setup(
        verifier=IntrospectedVerifier({"active": True, "token_type": "DPoP"}, key.thumbprint)
    )
    setup.key = key
    ok = await setup.call("opaque-token", setup.proof("opaque-token"))
    assert ok.status_code == 200, ok.text
    assert ok.json()["jkt"] == key.thumbprint


async def test_a_token_failure_goes_in_the_challenge_of_the_scheme_used() -> None:
    setup = Setup()
    expired = setup.issuer.token(
        audience=RESOURCE, alg="ES256", now=setup.clock.now - 3600, jkt=setup.key.thumbprint
    )
    response = await setup.call(expired, setup.proof(expired))
    assert_refused(response, 401, "invalid_token", scheme="DPoP")
    assert "error" not in challenge(response)["Bearer"]
    bearer = await setup.call(expired, None, scheme="Bearer")
    assert_refused(bearer, 401, "invalid_token", scheme="Bearer")
    assert "error" not in challenge(bearer)["DPoP"]


# -- confirmation methods we cannot check (RFC 7800 §3, RFC 8705 §3) -----------------------
@pytest.mark.parametrize(
    ("cnf", "says"),
    [
        (
            {"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"},
            "bound to a client certificate (x5t#S256), which this resource server cannot check",
        ),
        (
            {"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2", "kid": "k1"},
            "a client certificate (x5t#S256)",
        ),
        ({"jwk": {"kty": "EC", "crv": "P-256", "x": "x", "y": "y"}}, "a key (jwk)"),
        ({"kid": "dfd1aa97-6d8d-4575-a0fe-34b96de2bfad"}, "a key id (kid)"),
        ({"unknown-method": "value"}, "a confirmation method ('unknown-method')"),
    ],
)
@pytest.mark.parametrize("scheme", ["Bearer", "DPoP"])
async def test_a_token_bound_by_a_method_we_cannot_check_is_refused(
    cnf: dict[str, object], says: str, scheme: str
) -> None:
    setup = Setup()
    token = setup.token(bound=False, cnf=cnf)
    proof = setup.proof(token) if scheme == "DPoP" else None
    params = assert_refused(
        await setup.call(token, proof, scheme=scheme), 401, "invalid_token", scheme=scheme
    )
    assert says in params["error_description"]
    assert "cannot check" in params["error_description"]


async def test_a_cnf_member_named_with_control_characters_forges_no_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    setup = Setup()
    token = setup.token(bound=False, cnf={"\x1b]0;owned\x07\nrefused GET '/' forged": 1})
    with caplog.at_level("INFO", logger="oauthguard"):
        response = await setup.call(token, None, scheme="Bearer")
    description = assert_refused(response, 401, "invalid_token")["error_description"]
    assert "a confirmation method (" in description
    (refused,) = [record.getMessage() for record in caplog.records if "refused" in record.msg]
    assert refused.isprintable(), refused  # no newline, no terminal escape
    assert "\\x1b]0;owned\\x07\\nrefused" in refused


async def test_a_cnf_with_jkt_and_other_members_is_dpop_bound() -> None:
    setup = Setup()
    token = setup.token(bound=False, cnf={"jkt": setup.key.thumbprint, "x5t#S256": "abc"})
    assert (await setup.call(token, setup.proof(token))).status_code == 200
    params = assert_refused(
        await setup.call(token, None, scheme="Bearer"), 401, "invalid_token", scheme="Bearer"
    )
    assert "DPoP-bound" in params["error_description"]


async def test_an_empty_cnf_is_an_unbound_token() -> None:
    setup = Setup()
    token = setup.token(bound=False, cnf={})
    assert (await setup.call(token, None, scheme="Bearer")).status_code == 200


@pytest.mark.parametrize("cnf", [None, "jkt", ["jkt"], 1, {"jkt": None, "kid": "k1"}, {"jkt": 7}])
@pytest.mark.parametrize("scheme", ["Bearer", "DPoP"])
async def test_a_cnf_that_is_not_an_object_with_a_jkt_string_is_refused(
    cnf: object, scheme: str
) -> None:
    # RFC 7800 §3.1: cnf is a JSON object; a "cnf": null is malformed, never "no binding"
    setup = Setup()
    header, payload, _ = setup.token(bound=False).split(".")
    claims = {**json.loads(b64url_decode(payload)), "cnf": cnf}
    token = sign_jws(json.loads(b64url_decode(header)), claims, setup.issuer.private_key("ES256"))
    assert json.loads(b64url_decode(token.split(".")[1]))["cnf"] == cnf
    proof = setup.proof(token) if scheme == "DPoP" else None
    response = await setup.call(token, proof, scheme=scheme)
    assert_refused(response, 401, "invalid_token", scheme=scheme)
