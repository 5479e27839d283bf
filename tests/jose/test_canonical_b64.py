"""RFC 4648 §3.5 / RFC 7515 §2: one encoding per value. A base64url string whose last character
has unused bits set decodes to the same bytes as the canonical one; such a second spelling of
a token, a proof or a key is refused wherever base64url is read."""

from __future__ import annotations

from typing import Any

import pytest
from apps import NOW, Clock, bearer, client, guard
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from dpop_setup import RESOURCE, Setup
from proofs import ClientKey, rsa_key
from support import assert_refused

from oauthguard._dpop.proof import thumbprint
from oauthguard._jose.b64 import b64url_decode, b64url_encode
from oauthguard.testing import TestIssuer, public_jwk, sign_jws

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def noncanonical(segment: str) -> str:
    """``segment`` with the lowest unused bit of its last character set: the same bytes."""
    assert len(segment) % 4 in (2, 3), "a length whose last character has no unused bits"
    last = ALPHABET.index(segment[-1])
    assert last & 1 == 0
    return segment[:-1] + ALPHABET[last | 1]


def with_segment(compact: str, index: int, change: Any = noncanonical) -> str:
    parts = compact.split(".")
    parts[index] = change(parts[index])
    return ".".join(parts)


# -- the decoder ---------------------------------------------------------------------------
@pytest.mark.parametrize("size", [size for size in range(1, 12) if size % 3])
def test_every_unused_bit_pattern_of_the_last_character_is_refused(size: int) -> None:
    data = bytes(range(size))
    canonical = b64url_encode(data)
    unused = {1: 4, 2: 2}[size % 3]  # bits of the last character beyond the data
    last = ALPHABET.index(canonical[-1])
    for bits in range(1, 2**unused):
        variant = canonical[:-1] + ALPHABET[last | bits]
        with pytest.raises(ValueError, match="non-canonical"):
            b64url_decode(variant)
    assert b64url_decode(canonical) == data


@pytest.mark.parametrize("text", ["AB", "AR", "Af", "AAB", "AAC", "AAD", "_-_-_z"])
def test_strings_that_decode_leniently_elsewhere_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        b64url_decode(text)


# -- JWT access tokens ---------------------------------------------------------------------
ISSUER = TestIssuer("https://issuer.test", algorithms=("RS256", "ES256"))


def token_with_segments_to_spare(alg: str) -> str:
    """A valid token whose three segments all end on a character with unused bits."""
    for pad in range(12):
        value = ISSUER.token(
            audience=RESOURCE,
            alg=alg,
            now=NOW,
            claims={"pad": "x" * pad},
            headers={"pad": "y" * (pad % 3)},
        )
        if all(len(part) % 4 for part in value.split(".")):
            return value
    raise AssertionError("no padding gives three segments of such lengths")


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
@pytest.mark.parametrize("index", [0, 1, 2], ids=["header", "payload", "signature"])
def test_a_jwt_with_a_second_spelling_of_a_segment_is_refused(alg: str, index: int) -> None:
    api = client(guard(ISSUER, Clock()))
    value = token_with_segments_to_spare(alg)
    assert api.get("/mcp", headers=bearer(value)).status_code == 200
    variant = with_segment(value, index)
    params = assert_refused(api.get("/mcp", headers=bearer(variant)), 401, "invalid_token")
    assert params["error_description"] == "the token is not a well-formed JWT"


# -- DPoP proofs ---------------------------------------------------------------------------
@pytest.mark.anyio
@pytest.mark.parametrize("index", [0, 1, 2], ids=["header", "payload", "signature"])
async def test_a_dpop_proof_with_a_second_spelling_of_a_segment_is_refused(index: int) -> None:
    setup = Setup()
    token = setup.token()
    for pad in range(12):
        proof = setup.proof(token, claims={"pad": "x" * pad}, header={"pad": "y" * (pad % 3)})
        if all(len(part) % 4 for part in proof.split(".")):
            break
    params = assert_refused(
        await setup.call(token, with_segment(proof, index)),
        401,
        "invalid_dpop_proof",
        scheme="DPoP",
    )
    assert params["error_description"] == "the DPoP proof is not a well-formed JWT"
    assert (await setup.call(token, proof)).status_code == 200


def rsa_key_with_exponent_3() -> ClientKey:
    """An RS256 client key whose ``e`` (``Aw``) has a last character with unused bits."""
    key = ClientKey("RS256")
    key.private = rsa_key(2048, public_exponent=3)
    numbers = key.private.public_key().public_numbers()
    key.jwk = {"kty": "RSA", "e": "Aw", "n": b64url_encode(numbers.n.to_bytes(256, "big"))}
    return key


CLIENT_KEYS = {
    "EC x": (lambda: ClientKey("ES256"), "x"),
    "EC y": (lambda: ClientKey("ES256"), "y"),
    "RSA n": (lambda: ClientKey("RS256"), "n"),
    "RSA e": (rsa_key_with_exponent_3, "e"),
    "OKP x": (lambda: ClientKey("EdDSA"), "x"),
}


@pytest.mark.anyio
@pytest.mark.parametrize("case", CLIENT_KEYS)
async def test_a_proof_key_with_a_second_spelling_of_a_member_is_refused(case: str) -> None:
    make, name = CLIENT_KEYS[case]
    setup = Setup()
    setup.key = make()
    token = setup.token()
    assert (await setup.call(token, setup.proof(token))).status_code == 200
    jwk = {**setup.key.jwk, name: noncanonical(setup.key.jwk[name])}
    # A token bound to exactly this spelling: only the key's own check can refuse it.
    bound = setup.issuer.token(
        audience=RESOURCE, alg="ES256", now=setup.clock.now, jkt=thumbprint(jwk)
    )
    params = assert_refused(
        await setup.call(bound, setup.proof(bound, header={"jwk": jwk})),
        401,
        "invalid_dpop_proof",
        scheme="DPoP",
    )
    assert params["error_description"] == "the DPoP proof's jwk is not a valid public key"


# -- JWKS keys -----------------------------------------------------------------------------
ISSUER_KEYS: dict[str, tuple[Any, str, str]] = {
    "RSA n": (rsa_key(2048), "RS256", "n"),
    "RSA e": (rsa_key(2048, public_exponent=3), "RS256", "e"),
    "EC x": (ec.generate_private_key(ec.SECP256R1()), "ES256", "x"),
    "EC y": (ec.generate_private_key(ec.SECP256R1()), "ES256", "y"),
    "OKP x": (ed25519.Ed25519PrivateKey.generate(), "EdDSA", "x"),
}


@pytest.mark.parametrize("case", ISSUER_KEYS)
def test_a_jwks_key_with_a_second_spelling_of_a_member_is_skipped(
    case: str, caplog: pytest.LogCaptureFixture
) -> None:
    private, alg, name = ISSUER_KEYS[case]
    issuer = TestIssuer(algorithms=("RS256",))
    jwk = public_jwk(private, "respelled", alg)
    jwk[name] = noncanonical(jwk[name])
    issuer.extra_jwks.append(jwk)
    api = client(guard(issuer, Clock(), algorithms=[alg]))
    claims = {"iss": issuer.issuer, "aud": RESOURCE, "sub": "s", "exp": int(NOW) + 60}
    signed = sign_jws({"alg": alg, "typ": "at+jwt", "kid": "respelled"}, claims, private)
    with caplog.at_level("WARNING", logger="oauthguard"):
        params = assert_refused(api.get("/mcp", headers=bearer(signed)), 401, "invalid_token")
    assert "no signing key" in params["error_description"]
    assert f"{name} is not canonical base64url" in caplog.text
