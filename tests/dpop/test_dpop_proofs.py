"""RFC 9449 §4.3 proof checks through the guard: each with a passing and a refused case."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from dpop_setup import RESOURCE, Clock, Setup
from guards import build_guard
from proofs import REMOVE, ClientKey, ath, b64, tamper
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from support import assert_refused

from oauthguard import AccessToken
from oauthguard._dpop.proof import check_alg, check_jwk, check_proof_typ, parse_proof, thumbprint

pytestmark = pytest.mark.anyio

# RFC 9449 §4.2 Figure 4 (token request) and §7.1 Figure 13 (protected resource request).
RFC_JWK = {
    "kty": "EC",
    "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
    "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA",
    "crv": "P-256",
}
RFC_JKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
RFC_HEADER = (
    "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZ"
    "yaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NH"
    "piVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19"
)
RFC_TOKEN_PROOF = (
    RFC_HEADER + ".eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2"
    "VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8ig"
    "iMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg"
)
RFC_RESOURCE_PROOF = (
    RFC_HEADER + ".eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZX"
    "NvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8y"
    "cjJaM0RaNTNFc05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.2oW9RP35yRqzhrtNP86L-Ey71EOptxRimPPToA"
    "1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA"
)
RFC_ACCESS_TOKEN = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"


class RFCExampleVerifier:
    """The RFC's opaque token, as an introspecting verifier would describe it (§6.2)."""

    async def verify(self, token: str) -> AccessToken:
        assert token == RFC_ACCESS_TOKEN
        return AccessToken(
            subject="someone@example.com",
            client_id=None,
            scopes=frozenset(),
            audience=(),
            issuer="https://server.example.com",
            expires_at=1562266216,
            jkt=RFC_JKT,
        )


def rfc_example_app(clock: Clock) -> Starlette:
    async def endpoint(request: Request) -> Response:
        return JSONResponse({"scheme": request.auth.scheme, "jkt": request.auth.jkt})

    app = Starlette(routes=[Route("/protectedresource", endpoint)])
    app.add_middleware(
        build_guard,
        resource="https://resource.example.org/protectedresource",
        authorization_servers="https://server.example.com",
        verifier=RFCExampleVerifier(),
        clock=clock,
        http_client=httpx.AsyncClient(
            transport=httpx.MockTransport(lambda request: httpx.Response(500))
        ),
    )
    return app


async def test_the_rfc_9449_resource_request_example_passes_at_its_time() -> None:
    clock = Clock(1562262618 + 5)
    transport = httpx.ASGITransport(app=rfc_example_app(clock))
    async with httpx.AsyncClient(
        transport=transport, base_url="https://resource.example.org"
    ) as client:
        headers = {"Authorization": f"DPoP {RFC_ACCESS_TOKEN}", "DPoP": RFC_RESOURCE_PROOF}
        ok = await client.get("/protectedresource", headers=headers)
        assert ok.status_code == 200, ok.text
        assert ok.json() == {"scheme": "DPoP", "jkt": RFC_JKT}
        replayed = await client.get("/protectedresource", headers=headers)
        assert_refused(replayed, 401, "invalid_dpop_proof", scheme="DPoP")


async def test_the_rfc_9449_example_is_too_old_without_the_injected_clock() -> None:
    transport = httpx.ASGITransport(app=rfc_example_app(Clock(1562262618 + 61)))
    async with httpx.AsyncClient(
        transport=transport, base_url="https://resource.example.org"
    ) as client:
        response = await client.get(
            "/protectedresource",
            headers={"Authorization": f"DPoP {RFC_ACCESS_TOKEN}", "DPoP": RFC_RESOURCE_PROOF},
        )
        params = assert_refused(response, 401, "invalid_dpop_proof", scheme="DPoP")
        assert "iat" in params["error_description"]


def test_the_rfc_9449_token_request_proof_parses_and_thumbprints() -> None:
    proof = parse_proof(RFC_TOKEN_PROOF)
    check_proof_typ(proof.header)
    alg = check_alg(proof.header, frozenset({"ES256"}))
    assert thumbprint(check_jwk(proof.header, alg)) == RFC_JKT
    assert proof.claims == {
        "jti": "-BwC3ESc6acc2lTc",
        "htm": "POST",
        "htu": "https://server.example.com/token",
        "iat": 1562262616,
    }
    assert ath(RFC_ACCESS_TOKEN) == "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"


async def test_a_fresh_proof_for_a_bound_token_passes_as_dpop() -> None:
    setup = Setup()
    token = setup.token()
    response = await setup.call(token, setup.proof(token), scheme="dpop")
    assert response.status_code == 200, response.text
    assert response.json() == {"scheme": "DPoP", "jkt": setup.key.thumbprint, "sub": "user-1"}
    assert "dpop-nonce" not in response.headers


@pytest.mark.parametrize("alg", ["ES256", "EdDSA", "RS256", "PS256"])
async def test_each_default_algorithm_passes(alg: str) -> None:
    setup = Setup()
    setup.key = ClientKey(alg)
    token = setup.token()
    response = await setup.call(token, setup.proof(token))
    assert response.status_code == 200, response.text


async def test_the_fully_specified_ed25519_algorithm_passes_when_allowed() -> None:
    # RFC 9864 §2: "Ed25519" names EdDSA over Ed25519; dpop_algorithms accepts it.
    setup = Setup(dpop_algorithms=("Ed25519",))
    setup.key = ClientKey("EdDSA")
    token = setup.token()
    response = await setup.call(token, setup.proof(token, header={"alg": "Ed25519"}))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("typ", ["dpop+jwt", "DPoP+JWT", "application/dpop+jwt"])
async def test_typ_dpop_jwt_passes_in_any_case(typ: str) -> None:
    setup = Setup()
    token = setup.token()
    response = await setup.call(token, setup.proof(token, header={"typ": typ}))
    assert response.status_code == 200, response.text


def _private_jwk(key: ClientKey) -> dict[str, Any]:
    d = key.private.private_numbers().private_value
    return {**key.jwk, "d": b64(d.to_bytes(32, "big"))}


# name -> (proof options, what the description says); each is 401 invalid_dpop_proof.
BAD_HEADERS: dict[str, tuple[dict[str, Any], str]] = {
    "typ missing": ({"header": {"typ": REMOVE}}, "typ"),
    "typ JWT": ({"header": {"typ": "JWT"}}, "typ"),
    "typ at+jwt": ({"header": {"typ": "at+jwt"}}, "typ"),
    "typ not a string": ({"header": {"typ": ["dpop+jwt"]}}, "typ"),
    "jwk missing": ({"header": {"jwk": REMOVE}}, "no jwk"),
    "jwk not an object": ({"header": {"jwk": "key"}}, "no jwk"),
    "jwk symmetric": ({"header": {"jwk": {"kty": "oct", "k": b64(b"secret")}}}, "public key"),
    "alg none": ({"header": {"alg": "none"}, "signer": "none"}, "alg 'none'"),
    "alg HS256": ({"header": {"alg": "HS256"}, "signer": "hmac"}, "alg 'HS256'"),
    "alg missing": ({"header": {"alg": REMOVE}}, "alg"),
    "alg for another key type": ({"header": {"alg": "RS256"}}, "cannot verify RS256"),
    "crit header": ({"header": {"crit": ["exp"]}}, "critical"),
    "jwk declared for another alg": ({"header": {"jwk_alg": "ES384"}}, "another alg"),
    "jwk crv an array": ({"header": {"jwk_crv": ["P-256"]}}, "cannot verify ES256"),
    "jwk crv an object": ({"header": {"jwk_crv": {"P-256": True}}}, "cannot verify ES256"),
}


@pytest.mark.parametrize("case", sorted(BAD_HEADERS))
async def test_a_bad_proof_header_is_refused(case: str) -> None:
    setup = Setup()
    token = setup.token()
    options, reason = BAD_HEADERS[case]
    options = dict(options)
    header = dict(options.pop("header"))
    if "jwk_alg" in header:
        header = {"jwk": {**setup.key.jwk, "alg": header.pop("jwk_alg")}}
    if "jwk_crv" in header:
        header = {"jwk": {**setup.key.jwk, "crv": header.pop("jwk_crv")}}
    response = await setup.call(token, setup.proof(token, header=header, **options))
    params = assert_refused(response, 401, "invalid_dpop_proof", scheme="DPoP")
    assert reason in params["error_description"]


async def test_a_jwk_with_private_members_is_refused_though_it_verifies() -> None:
    setup = Setup()
    token = setup.token()
    proof = setup.proof(token, header={"jwk": _private_jwk(setup.key)})
    params = assert_refused(
        await setup.call(token, proof), 401, "invalid_dpop_proof", scheme="DPoP"
    )
    assert params["error_description"] == "the DPoP proof's jwk must be a public key"


async def test_an_algorithm_outside_dpop_algorithms_is_refused() -> None:
    setup = Setup(dpop_algorithms=("ES256",))
    setup.key = ClientKey("EdDSA")
    token = setup.token()
    response = await setup.call(token, setup.proof(token))
    params = assert_refused(response, 401, "invalid_dpop_proof", scheme="DPoP")
    assert params["algs"] == "ES256"
    es384 = Setup()
    es384.key = ClientKey("ES384")
    token = es384.token()
    assert_refused(
        await es384.call(token, es384.proof(token)), 401, "invalid_dpop_proof", scheme="DPoP"
    )


async def test_a_short_rsa_key_is_refused() -> None:
    setup = Setup()
    setup.key = ClientKey("RS256", rsa_bits=1024)
    token = setup.token()
    params = assert_refused(
        await setup.call(token, setup.proof(token)), 401, "invalid_dpop_proof", scheme="DPoP"
    )
    assert "2048" in params["error_description"]


async def test_a_bad_signature_is_refused() -> None:
    setup = Setup()
    token = setup.token()
    params = assert_refused(
        await setup.call(token, tamper(setup.proof(token))),
        401,
        "invalid_dpop_proof",
        scheme="DPoP",
    )
    assert "signature" in params["error_description"]


async def test_a_proof_signed_by_another_key_than_its_jwk_is_refused() -> None:
    setup = Setup()
    token = setup.token()
    # The token's key in the header (so the binding holds), signed by another key.
    forged = ClientKey().proof(
        "GET",
        "https://api.test/mcp",
        now=setup.clock.now,
        token=token,
        header={"jwk": setup.key.jwk},
    )
    params = assert_refused(
        await setup.call(token, forged), 401, "invalid_dpop_proof", scheme="DPoP"
    )
    assert "signature" in params["error_description"]


@pytest.mark.parametrize(
    "value",
    [
        "not-a-jwt",
        "a.b",
        "a.b.c.d.e",
        "!!!.???.***",
        b64(b"[]") + "." + b64(b"{}") + ".",
        b64(b'{"typ":"dpop+jwt"') + "." + b64(b"{}") + ".",
    ],
)
async def test_a_malformed_proof_is_refused(value: str) -> None:
    setup = Setup()
    token = setup.token()
    assert_refused(await setup.call(token, value), 401, "invalid_dpop_proof", scheme="DPoP")


def bound_to(setup: Setup, jwk: dict[str, Any]) -> str:
    """A token bound to ``jwk``, whatever its key material (so the binding check passes)."""
    return setup.issuer.token(
        audience=RESOURCE, alg="ES256", now=setup.clock.now, jkt=thumbprint(jwk)
    )


async def test_an_off_curve_point_is_refused() -> None:
    setup = Setup()
    jwk = dict(setup.key.jwk)
    jwk["y"] = jwk["x"]
    token = bound_to(setup, jwk)
    proof = setup.proof(token, header={"jwk": jwk})
    params = assert_refused(
        await setup.call(token, proof), 401, "invalid_dpop_proof", scheme="DPoP"
    )
    assert "not a valid public key" in params["error_description"]


IAT_CASES = {
    "old": (lambda now: now - 61, "too old"),
    "future": (lambda now: now + 31, "future"),
    "missing": (lambda now: REMOVE, "numeric iat"),
    "string": (lambda now: str(int(now)), "numeric iat"),
    "boolean": (lambda now: True, "numeric iat"),
    # Integers beyond float range (JSON allows them) are compared, never converted.
    "huge integer": (lambda now: 10**400, "future"),
    "huge negative integer": (lambda now: -(10**400), "too old"),
}


@pytest.mark.parametrize("case", sorted(IAT_CASES))
async def test_a_bad_iat_is_refused(case: str) -> None:
    setup = Setup()
    token = setup.token()
    value, reason = IAT_CASES[case]
    proof = setup.proof(token, claims={"iat": value(setup.clock.now)})
    params = assert_refused(
        await setup.call(token, proof), 401, "invalid_dpop_proof", scheme="DPoP"
    )
    assert reason in params["error_description"]


@pytest.mark.parametrize("offset", [-60, -59.5, 0, 30])
async def test_an_iat_within_the_window_passes(offset: float) -> None:
    setup = Setup()
    token = setup.token()
    proof = setup.proof(token, claims={"iat": setup.clock.now + offset})
    assert (await setup.call(token, proof)).status_code == 200


async def test_dpop_max_age_sets_the_window() -> None:
    setup = Setup(dpop_max_age=10)
    token = setup.token()
    fresh = setup.proof(token, claims={"iat": setup.clock.now - 10})
    assert (await setup.call(token, fresh)).status_code == 200
    stale = setup.proof(token, claims={"iat": setup.clock.now - 11})
    assert_refused(await setup.call(token, stale), 401, "invalid_dpop_proof", scheme="DPoP")


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"jti": REMOVE}, "jti"),
        ({"jti": ""}, "jti"),
        ({"jti": "x" * 257}, "jti"),
        ({"jti": 12345}, "jti"),
        ({"jti": "\ud800"}, "not a well-formed JWT"),  # RFC 8259 §8.2: no Unicode string
        ({"jti": "\ud83d\\\ude00"}, "not a well-formed JWT"),  # no pair across a backslash
        ({"htu": "https://api.test/\udc00"}, "not a well-formed JWT"),
        ({"htm": REMOVE}, "no htm"),
        ({"htm": "POST"}, "htm does not match"),
        ({"htm": "get"}, "htm does not match"),
        ({"htu": REMOVE}, "no htu"),
        ({"htu": 42}, "no htu"),
        ({"htu": "https://api.test/other"}, "htu does not match"),
        ({"htu": "https://other.test/mcp"}, "htu does not match"),
        ({"htu": "http://api.test/mcp"}, "htu does not match"),
        ({"htu": "https://api.test:8443/mcp"}, "htu does not match"),
        ({"htu": "https://user@api.test/mcp"}, "htu does not match"),
        ({"htu": "not a url"}, "htu does not match"),
        ({"htu": "https://api.test/mcp?x=1"}, "query or fragment"),
        ({"htu": "https://api.test/mcp#frag"}, "query or fragment"),
        ({"htu": "\t https://api.test/mcp"}, "htu does not match"),
        ({"htu": "https://api.test/m\ncp"}, "htu does not match"),
        ({"ath": REMOVE}, "no ath"),
        ({"ath": 1}, "no ath"),
        ({"ath": ath("another-token")}, "ath does not match"),
    ],
    ids=lambda value: json.dumps(value, default=str)[:40],
)
async def test_a_bad_claim_is_refused(claims: dict[str, Any], reason: str) -> None:
    setup = Setup()
    token = setup.token()
    response = await setup.call(token, setup.proof(token, claims=claims))
    params = assert_refused(response, 401, "invalid_dpop_proof", scheme="DPoP")
    assert reason in params["error_description"]


@pytest.mark.parametrize(
    "htu",
    [
        "HTTPS://API.TEST/mcp",
        "https://api.test:443/mcp",
        "https://api.test/%6Dcp",
        "https://api.test/a/../mcp",
        "https://api.test/./mcp",
    ],
)
async def test_htu_is_compared_after_normalization(htu: str) -> None:
    setup = Setup()
    token = setup.token()
    response = await setup.call(token, setup.proof(token, url=htu))
    assert response.status_code == 200, response.text


async def test_htu_percent_encoding_of_unreserved_characters_is_normalized() -> None:
    setup = Setup()
    token = setup.token()
    proof = setup.proof(token, url="https://api.test/a/%7Euser")
    response = await setup.call(token, proof, path="/a/~user")
    assert response.status_code == 200, response.text
    proof = setup.proof(token, url="https://api.test/a/~user")
    response = await setup.call(token, proof, path="/a/%7euser")
    assert response.status_code == 200, response.text
    # %2F is reserved: it is not the same URI as "/".
    proof = setup.proof(token, url="https://api.test/a/b%2Fc")
    assert_refused(
        await setup.call(token, proof, path="/a/b/c"), 401, "invalid_dpop_proof", scheme="DPoP"
    )


async def test_htu_ignores_the_request_query() -> None:
    setup = Setup()
    token = setup.token()
    response = await setup.call(token, setup.proof(token), path="/mcp?page=2")
    assert response.status_code == 200, response.text


async def test_htm_follows_the_method() -> None:
    setup = Setup()
    token = setup.token()
    response = await setup.call(token, setup.proof(token, method="POST"), method="POST")
    assert response.status_code == 200
    params = assert_refused(
        await setup.call(token, setup.proof(token), method="POST"),
        401,
        "invalid_dpop_proof",
        scheme="DPoP",
    )
    assert "htm" in params["error_description"]


async def test_an_oversized_or_non_ascii_proof_is_refused() -> None:
    setup = Setup()
    token = setup.token()
    padded = setup.proof(token, claims={"pad": "x" * 9000})
    params = assert_refused(
        await setup.call(token, padded), 401, "invalid_dpop_proof", scheme="DPoP"
    )
    assert "longer than 8192 bytes" in params["error_description"]
    async with setup.client() as client:
        response = await client.get(
            "/mcp",
            headers=[
                (b"authorization", f"DPoP {token}".encode()),
                (b"dpop", setup.proof(token).encode() + b"\xff"),
            ],
        )
    assert_refused(response, 401, "invalid_dpop_proof", scheme="DPoP")
