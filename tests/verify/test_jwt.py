"""RFC 9068 §4 and RFC 8725 checks of JWT access tokens, each bad token refused over HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from apps import NOW, RESOURCE, Clock, bearer, guard, inner_app
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from guards import build_guard
from inprocess import InProcessClient
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
from proofs import rsa_key
from support import assert_refused

from oauthguard._jose.b64 import b64url_decode, b64url_encode
from oauthguard.testing import TestIssuer, public_jwk, sign_jws

ISSUER = TestIssuer("https://issuer.test", algorithms=("RS256", "PS256", "ES256", "EdDSA"))
RSA_KID = ISSUER.default_kid["RS256"]
ATTACKER = rsa_key(2048)  # no key of ISSUER's


def claims(**changes: Any) -> dict[str, Any]:
    payload = {
        "iss": ISSUER.issuer,
        "sub": "user-1",
        "aud": RESOURCE,
        "iat": int(NOW),
        "exp": int(NOW) + 300,
        "scope": "read",
    }
    payload.update(changes)
    return {name: value for name, value in payload.items() if value is not None}


def token(alg: str = "RS256", headers: dict[str, Any] | None = None, **changes: Any) -> str:
    return ISSUER.token(
        audience=RESOURCE, scope="read", alg=alg, now=NOW, headers=headers, claims=changes or None
    )


def header(alg: str = "RS256", **extra: Any) -> dict[str, Any]:
    return {"alg": alg, "typ": "at+jwt", "kid": RSA_KID, **extra}


def rsa_public_pem() -> bytes:
    return (
        ISSUER.private_key("RS256")
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def tampered() -> str:
    head, _, signature = token().split(".")
    body = b64url_encode(json.dumps(claims(sub="admin", scope="read write")).encode())
    return f"{head}.{body}.{signature}"


def segments(*parts: bytes) -> str:
    return ".".join(b64url_encode(part) for part in parts)


BAD_TOKENS: dict[str, tuple[Callable[[], str], str]] = {
    "alg none": (lambda: sign_jws(header("none"), claims(), None), "algorithm"),
    "alg None": (lambda: sign_jws(header("None"), claims(), None, alg="none"), "algorithm"),
    "HS256 with the RSA public key PEM as secret": (
        lambda: sign_jws(header("HS256"), claims(), rsa_public_pem()),
        "algorithm",
    ),
    "HS256 with the RSA public JWK as secret": (
        lambda: sign_jws(
            header("HS256"),
            claims(),
            json.dumps(public_jwk(ISSUER.private_key("RS256"), RSA_KID, "RS256")).encode(),
        ),
        "algorithm",
    ),
    "signed by another key under a known kid": (
        lambda: sign_jws(header(), claims(), ATTACKER),
        "signature does not verify",
    ),
    "ES256 under an RSA kid": (
        lambda: sign_jws(header("ES256"), claims(), ISSUER.private_key("ES256")),
        "cannot verify ES256",
    ),
    "RS256 under the PS256 key (the JWK's alg differs)": (
        lambda: sign_jws(
            header(kid=ISSUER.default_kid["PS256"]), claims(), ISSUER.private_key("PS256")
        ),
        "cannot verify RS256",
    ),
    "unknown kid": (lambda: sign_jws(header(kid="nobody"), claims(), ATTACKER), "no signing key"),
    "kid not a string": (lambda: sign_jws(header(kid=7), claims(), ATTACKER), "kid"),
    "expired": (lambda: token(exp=int(NOW) - 31), "expired"),
    "not yet valid": (lambda: token(nbf=int(NOW) + 31), "not valid yet"),
    "issued in the future": (lambda: token(iat=int(NOW) + 31), "issued in the future"),
    "missing exp": (lambda: sign_jws(header(), claims(exp=None), ISSUER.private_key()), "no exp"),
    "exp not a number": (lambda: token(exp="tomorrow"), "exp claim is not a number"),
    "exp a boolean": (lambda: token(exp=True), "exp claim is not a number"),
    "nbf not a number": (lambda: token(nbf=[1]), "nbf claim is not a number"),
    "exp NaN": (
        lambda: sign_jws(
            header(), json.dumps(claims(exp=float("nan"))).encode(), ISSUER.private_key()
        ),
        "exp claim is not a number",
    ),
    "exp Infinity": (
        lambda: sign_jws(
            header(), json.dumps(claims(exp=float("inf"))).encode(), ISSUER.private_key()
        ),
        "exp claim is not a number",
    ),
    "exp an integer beyond float range": (lambda: token(exp=10**400), "exp claim is not a number"),
    "nbf a negative integer beyond float range": (
        lambda: token(nbf=-(10**400)),
        "nbf claim is not a number",
    ),
    "exp with 5000 digits": (
        lambda: sign_jws(
            header(),
            json.dumps(claims()).replace(str(int(NOW) + 300), "9" * 5000).encode(),
            ISSUER.private_key(),
        ),
        "not a well-formed JWT",
    ),
    "wrong iss": (lambda: token(iss="https://other.test"), "issuer is not trusted"),
    "iss differing by a trailing slash": (
        lambda: token(iss="https://issuer.test/"),
        "issuer is not trusted",
    ),
    "no iss": (
        lambda: sign_jws(header(), claims(iss=None), ISSUER.private_key()),
        "issuer is not trusted",
    ),
    "wrong aud": (lambda: token(aud="https://api.test/other"), "not meant for this resource"),
    "aud array without us": (
        lambda: token(aud=["https://a.test", "https://b.test"]),
        "not meant for this resource",
    ),
    "no aud": (lambda: sign_jws(header(), claims(aud=None), ISSUER.private_key()), "no valid aud"),
    "aud not strings": (lambda: token(aud=[1, 2]), "no valid aud"),
    "tampered payload": (tampered, "signature does not verify"),
    "crit header": (lambda: token(headers={"crit": ["exp"], "exp": 1}), "critical"),
    "garbage": (lambda: "garbage", "not a JWT"),
    "two parts": (lambda: segments(b'{"alg":"RS256"}', b"{}"), "not a JWT"),
    "four parts": (lambda: segments(b"{}", b"{}", b"x", b"y"), "not a JWT"),
    "JWE five parts": (
        lambda: segments(b'{"alg":"RSA-OAEP","enc":"A256GCM"}', b"k", b"iv", b"ct", b"tag"),
        "encrypted",
    ),
    "bad base64url (standard alphabet)": (lambda: "+" + token()[1:], "not a well-formed JWT"),
    "bad base64url (impossible length)": (lambda: "a" + token(), "not a well-formed JWT"),
    "padded base64url": (lambda: token() + "==", "not a well-formed JWT"),
    "header not JSON": (lambda: segments(b"not json", b"{}", b"sig"), "not a well-formed JWT"),
    "payload not JSON": (
        lambda: segments(b'{"alg":"RS256"}', b"\xff\xfe", b"sig"),
        "not a well-formed JWT",
    ),
    "header a JSON array": (lambda: segments(b'["RS256"]', b"{}", b"sig"), "JSON objects"),
    "payload a JSON string": (lambda: segments(b'{"alg":"RS256"}', b'"x"', b"sig"), "JSON objects"),
    "deeply nested JSON": (
        lambda: segments(b"[" * 3000 + b"]" * 3000, b"{}", b"s"),
        "not a well-formed JWT",
    ),
    "empty signature": (lambda: token().rsplit(".", 1)[0] + ".", "signature does not verify"),
    "typ dpop+jwt": (lambda: token(headers={"typ": "dpop+jwt"}), "not an access token type"),
    "typ logout+jwt": (lambda: token(headers={"typ": "logout+jwt"}), "not an access token type"),
    "typ secevent+jwt": (
        lambda: token(headers={"typ": "secevent+jwt"}),
        "not an access token type",
    ),
    "typ not a string": (lambda: token(headers={"typ": 1}), "not an access token type"),
    "sub not a string": (lambda: token(sub=5), "sub claim is not a string"),
    "client_id not a string, azp beside it": (
        lambda: token(client_id=5, azp="trusted-app"),
        "client_id claim is not a string",
    ),
    # RFC 8259 §8.2: no string of characters; the app could not encode it (a 500 there).
    "a lone surrogate in a claim": (lambda: token(sub="\ud800"), "not a well-formed JWT"),
    "a lone low surrogate": (lambda: token(name="a\udc00b"), "not a well-formed JWT"),
    "a lone surrogate in the header": (
        lambda: token(headers={"x": "\udbff"}),
        "not a well-formed JWT",
    ),
}


@pytest.fixture
def api() -> Any:
    return InProcessClient(guard(ISSUER, Clock()))


@pytest.mark.parametrize("name", BAD_TOKENS)
def test_a_bad_token_is_refused_with_invalid_token(api: Any, name: str) -> None:
    make, reason = BAD_TOKENS[name]
    value = make()
    response = api.get("/mcp", headers=bearer(value))
    params = assert_refused(response, 401, "invalid_token")
    assert reason in params["error_description"]


@pytest.mark.parametrize("name", [name for name in BAD_TOKENS if "typ" in name or "alg" in name])
def test_refusals_do_not_echo_token_content(api: Any, name: str) -> None:
    response = api.get("/mcp", headers=bearer(BAD_TOKENS[name][0]()))
    params = assert_refused(response, 401, "invalid_token")
    for echoed in ("dpop+jwt", "logout+jwt", "secevent+jwt", "None", "none", "HS256"):
        assert echoed not in params["error_description"]


@pytest.mark.parametrize("text", ["\U0001f600", "\\ud800", "caf\u00e9"])
def test_claims_with_any_character_pass(api: Any, text: str) -> None:
    """A surrogate pair (one character), an escaped backslash before 'ud800', non-ASCII."""
    response = api.get("/mcp", headers=bearer(token(sub=text)))
    assert response.status_code == 200, response.text
    assert response.json()["subject"] == text


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256", "EdDSA"])
def test_a_good_token_of_each_algorithm_passes(api: Any, alg: str) -> None:
    response = api.get("/mcp", headers=bearer(token(alg)))
    assert response.status_code == 200, response.text
    assert response.json()["subject"] == "user-1"


@pytest.mark.parametrize(
    "typ", [None, "JWT", "jwt", "application/jwt", "at+jwt", "AT+JWT", "application/at+jwt"]
)
def test_lenient_typ_accepts_absent_jwt_and_at_jwt(api: Any, typ: str | None) -> None:
    response = api.get("/mcp", headers=bearer(token(headers={"typ": typ})))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("typ", "passes"),
    [
        (None, False),
        ("JWT", False),
        ("application/jwt", False),
        ("dpop+jwt", False),
        ("logout+jwt", False),
        ("at+jwt", True),
        ("application/at+jwt", True),
    ],
)
def test_strict_typ_requires_at_jwt(typ: str | None, passes: bool) -> None:
    api = InProcessClient(guard(ISSUER, Clock(), strict_typ=True))
    response = api.get("/mcp", headers=bearer(token(headers={"typ": typ})))
    if passes:
        assert response.status_code == 200, response.text
    else:
        assert_refused(response, 401, "invalid_token")


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
def test_times_within_the_leeway_pass(api: Any, claim: str) -> None:
    skew = {"exp": -29, "nbf": 29, "iat": 29}[claim]
    response = api.get("/mcp", headers=bearer(token(**{claim: int(NOW) + skew})))
    assert response.status_code == 200, response.text


def test_leeway_is_configurable() -> None:
    api = InProcessClient(guard(ISSUER, Clock(), leeway=0))
    assert_refused(api.get("/mcp", headers=bearer(token(exp=int(NOW)))), 401, "invalid_token")
    assert api.get("/mcp", headers=bearer(token(exp=int(NOW) + 1))).status_code == 200


def test_aud_array_containing_us_passes(api: Any) -> None:
    response = api.get("/mcp", headers=bearer(token(aud=["https://other.test", RESOURCE])))
    assert response.status_code == 200
    assert response.json()["audience"] == ["https://other.test", RESOURCE]


def test_configured_audiences_replace_the_resource() -> None:
    api = InProcessClient(guard(ISSUER, Clock(), audiences=["urn:api"]))
    assert api.get("/mcp", headers=bearer(token(aud="urn:api"))).status_code == 200
    assert_refused(api.get("/mcp", headers=bearer(token())), 401, "invalid_token")


def test_an_algorithm_outside_the_configured_list_is_refused() -> None:
    api = InProcessClient(guard(ISSUER, Clock(), algorithms=["ES256"]))
    assert api.get("/mcp", headers=bearer(token("ES256"))).status_code == 200
    params = assert_refused(api.get("/mcp", headers=bearer(token())), 401, "invalid_token")
    assert "algorithm" in params["error_description"]


@pytest.mark.parametrize("name", ["jku", "x5u", "jwk", "x5c"])
def test_key_headers_pointing_elsewhere_are_never_fetched_or_used(name: str) -> None:
    issuer = TestIssuer(algorithms=("RS256",))
    api = InProcessClient(guard(issuer, Clock()))
    elsewhere = {
        "jku": "https://attacker.test/jwks.json",
        "x5u": "https://attacker.test/cert.pem",
        "jwk": public_jwk(ATTACKER, "attacker"),
        "x5c": ["MIIBIjANBgkqhkiG9w0BAQEFAAOC"],
    }[name]
    forged = sign_jws(
        {"alg": "RS256", "typ": "at+jwt", "kid": "attacker", name: elsewhere},
        claims(iss=issuer.issuer),
        ATTACKER,
    )
    assert_refused(api.get("/mcp", headers=bearer(forged)), 401, "invalid_token")
    # A genuine token carrying the same header is judged by the issuer's keys alone.
    genuine = issuer.token(audience=RESOURCE, now=NOW, headers={name: elsewhere})
    assert api.get("/mcp", headers=bearer(genuine)).status_code == 200
    assert issuer.requests, "the issuer's own keys were fetched"
    assert {request.url.host for request in issuer.requests} == {"issuer.test"}


def test_an_oct_key_in_the_jwks_never_verifies() -> None:
    issuer = TestIssuer(algorithms=("RS256",))
    secret = b"s" * 32
    issuer.extra_jwks.append({"kty": "oct", "kid": "shared", "k": b64url_encode(secret)})
    api = InProcessClient(guard(issuer, Clock()))
    hs = sign_jws(
        {"alg": "HS256", "typ": "at+jwt", "kid": "shared"}, claims(iss=issuer.issuer), secret
    )
    assert_refused(api.get("/mcp", headers=bearer(hs)), 401, "invalid_token")
    rs = sign_jws(
        {"alg": "RS256", "typ": "at+jwt", "kid": "shared"},
        claims(iss=issuer.issuer),
        issuer.private_key(),
    )
    params = assert_refused(api.get("/mcp", headers=bearer(rs)), 401, "invalid_token")
    assert "no signing key" in params["error_description"]


def test_a_pss_signature_without_its_leading_zero_octet_is_refused() -> None:
    # RFC 8017 §8.1.2: a signature is as long as the modulus; a shorter one is another
    # spelling of the same token (OpenSSL would verify it).
    api = InProcessClient(guard(ISSUER, Clock()))
    for _ in range(20_000):
        value = token("PS256")
        head, body, signature = value.split(".")
        raw = b64url_decode(signature)
        if raw[0] == 0:
            break
    else:
        raise AssertionError("no signature with a leading zero octet")
    assert api.get("/mcp", headers=bearer(value)).status_code == 200
    shorter = f"{head}.{body}.{b64url_encode(raw[1:])}"
    params = assert_refused(api.get("/mcp", headers=bearer(shorter)), 401, "invalid_token")
    assert params["error_description"] == "the token's signature does not verify"


def test_a_small_rsa_key_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    issuer = TestIssuer(algorithms=("RS256",))
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    issuer.extra_jwks.append(public_jwk(small, "small", "RS256"))
    api = InProcessClient(guard(issuer, Clock()))
    forged = sign_jws(
        {"alg": "RS256", "typ": "at+jwt", "kid": "small"}, claims(iss=issuer.issuer), small
    )
    with caplog.at_level("WARNING", logger="oauthguard"):
        params = assert_refused(api.get("/mcp", headers=bearer(forged)), 401, "invalid_token")
    assert "no signing key" in params["error_description"]
    assert "1024 bits" in caplog.text
    assert (
        api.get("/mcp", headers=bearer(issuer.token(audience=RESOURCE, now=NOW))).status_code == 200
    )


@pytest.mark.parametrize("kind", ["RSA", "EC", "OKP"])
def test_a_published_private_key_is_skipped(kind: str, caplog: pytest.LogCaptureFixture) -> None:
    # OpenID Connect Discovery 1.0 §3: a JWKS holds no private keys; one that does is no
    # secret, so tokens it signs prove nothing, and its public half is not used either.
    issuer = TestIssuer(algorithms=("RS256",))
    private, alg = {
        "RSA": (ATTACKER, "RS256"),
        "EC": (ec.generate_private_key(ec.SECP256R1()), "ES256"),
        "OKP": (ed25519.Ed25519PrivateKey.generate(), "EdDSA"),
    }[kind]
    loader = {"RSA": RSAAlgorithm, "EC": ECAlgorithm, "OKP": OKPAlgorithm}[kind]
    leaked = json.loads(loader.to_jwk(private))
    leaked.pop("key_ops", None)  # what PyJWT adds for a private key
    issuer.extra_jwks.append({**leaked, "kid": "leaked"})
    api = InProcessClient(guard(issuer, Clock(), algorithms=[alg]))
    forged = sign_jws(
        {"alg": alg, "typ": "at+jwt", "kid": "leaked"}, claims(iss=issuer.issuer), private
    )
    with caplog.at_level("WARNING", logger="oauthguard"):
        params = assert_refused(api.get("/mcp", headers=bearer(forged)), 401, "invalid_token")
    assert "no signing key" in params["error_description"]
    assert "private key members" in caplog.text


def test_an_ec_key_on_another_curve_does_not_verify_es256() -> None:
    issuer = TestIssuer(algorithms=("RS256",))
    p384 = ec.generate_private_key(ec.SECP384R1())
    issuer.extra_jwks.append(public_jwk(p384, "p384"))
    api = InProcessClient(guard(issuer, Clock(), algorithms=["ES256", "ES384"]))
    forged = sign_jws(
        {"alg": "ES256", "typ": "at+jwt", "kid": "p384"},
        claims(iss=issuer.issuer),
        p384,
        alg="ES384",
    )
    params = assert_refused(api.get("/mcp", headers=bearer(forged)), 401, "invalid_token")
    assert "cannot verify ES256" in params["error_description"]


def test_a_token_without_kid_is_checked_against_every_key(api: Any) -> None:
    response = api.get("/mcp", headers=bearer(token("ES256", headers={"kid": None})))
    assert response.status_code == 200, response.text


def test_the_fully_specified_ed25519_algorithm_verifies() -> None:
    issuer = TestIssuer(algorithms=("EdDSA",))
    issuer.extra_jwks.append(public_jwk(issuer.private_key("EdDSA"), "ed"))
    api = InProcessClient(guard(issuer, Clock(), algorithms=["Ed25519"]))
    signed = sign_jws(
        {"alg": "Ed25519", "typ": "at+jwt", "kid": "ed"},
        claims(iss=issuer.issuer),
        issuer.private_key("EdDSA"),
        alg="EdDSA",
    )
    assert api.get("/mcp", headers=bearer(signed)).status_code == 200
    eddsa = issuer.token(audience=RESOURCE, alg="EdDSA", now=NOW)
    assert_refused(api.get("/mcp", headers=bearer(eddsa)), 401, "invalid_token")


class ByHost(httpx.AsyncBaseTransport):
    """Routes each request to the in-process issuer of its host."""

    def __init__(self, *issuers: TestIssuer) -> None:
        self.routes = {httpx.URL(i.issuer).host: i.transport() for i in issuers}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.routes[request.url.host].handle_async_request(request)


def test_with_two_issuers_a_token_is_checked_only_against_its_own_issuers_keys() -> None:
    first = TestIssuer("https://a.test", algorithms=("RS256",))
    second = TestIssuer("https://b.test", algorithms=("RS256",))
    http = httpx.AsyncClient(transport=ByHost(first, second))
    app = build_guard(
        inner_app(),
        resource=RESOURCE,
        clock=Clock(),
        http_client=http,
        authorization_servers=[first.issuer, second.issuer],
    )
    api = InProcessClient(app)
    for issuer in (first, second):
        response = api.get("/mcp", headers=bearer(issuer.token(audience=RESOURCE, now=NOW)))
        assert response.json()["issuer"] == issuer.issuer
    # RFC 8725 §3.8: signed by b's key under b's kid, but claiming to come from a.
    confused = second.token(audience=RESOURCE, now=NOW, claims={"iss": first.issuer})
    params = assert_refused(api.get("/mcp", headers=bearer(confused)), 401, "invalid_token")
    assert "no signing key" in params["error_description"]
