"""RSA public keys within bounds (modulus size, a small odd exponent) before any signature work:
the sender of a DPoP proof picks its key, and with it the cost of checking its signature."""

from __future__ import annotations

import functools
import math
import secrets
from typing import Any

import pytest
from apps import NOW, Clock, bearer, client, guard
from cryptography.hazmat.primitives.asymmetric import rsa
from dpop_setup import RESOURCE, Setup
from proofs import ClientKey, rsa_key, tamper
from support import assert_refused

from oauthguard._dpop.proof import MAX_PROOF_RSA_BITS
from oauthguard._jose.b64 import b64url_encode
from oauthguard._jose.jwk import MAX_RSA_BITS, WeakKey, check_rsa_numbers
from oauthguard.testing import TestIssuer, public_jwk, sign_jws

HUGE_E = "RSA exponent e must be odd, from 3 to 2^32-1"


def b64_int(value: int) -> str:
    return b64url_encode(value.to_bytes((value.bit_length() + 7) // 8, "big"))


@functools.cache
def key_with_huge_exponent() -> rsa.RSAPrivateKey:
    """A real 3072-bit key pair whose public exponent has 3071 bits: its signatures verify,
    at 40 to 50 times the cost of a normal key's."""
    primes = rsa_key(3072).private_numbers()
    p, q = primes.p, primes.q
    order = math.lcm(p - 1, q - 1)
    e = 0
    while math.gcd(e, order) != 1:
        e = secrets.randbits(3071) | 1 << 3070 | 1
    d = pow(e, -1, order)
    public = rsa.RSAPublicNumbers(e, p * q)
    numbers = rsa.RSAPrivateNumbers(p, q, d, d % (p - 1), d % (q - 1), pow(q, -1, p), public)
    # Consistent by construction: its check (~0.13 s of CPU) would only repeat the math above.
    return numbers.private_key(unsafe_skip_rsa_key_validation=True)


def odd_number_of(bits: int) -> int:
    return 1 << (bits - 1) | 1


# -- the bounds ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("bits", "e"),
    [(2048, 65537), (2048, 3), (2048, 2**32 - 1), (3072, 65537), (MAX_RSA_BITS, 65537)],
)
def test_keys_within_the_bounds_pass(bits: int, e: int) -> None:
    check_rsa_numbers(odd_number_of(bits), e)


@pytest.mark.parametrize(
    ("n", "e", "reason"),
    [
        (odd_number_of(2047), 65537, "below 2048"),
        (odd_number_of(MAX_RSA_BITS + 1), 65537, f"above {MAX_RSA_BITS}"),
        (odd_number_of(2048) + 1, 65537, "n is even"),
        (odd_number_of(2048), 1, HUGE_E),
        (odd_number_of(2048), 2, HUGE_E),
        (odd_number_of(2048), 65536, HUGE_E),
        (odd_number_of(2048), 2**32 + 1, HUGE_E),
        (odd_number_of(3072), odd_number_of(3071), HUGE_E),
    ],
)
def test_keys_outside_the_bounds_are_weak(n: int, e: int, reason: str) -> None:
    with pytest.raises(WeakKey, match=reason.replace("^", r"\^")):
        check_rsa_numbers(n, e)


# -- JWKS keys -----------------------------------------------------------------------------
def jwks_rsa(n: int, e: int, kid: str) -> dict[str, Any]:
    return {
        "kty": "RSA",
        "kid": kid,
        "alg": "RS256",
        "use": "sig",
        "n": b64_int(n),
        "e": b64_int(e),
    }


def test_a_jwks_key_with_a_huge_exponent_is_skipped_and_the_others_work(
    caplog: pytest.LogCaptureFixture,
) -> None:
    issuer = TestIssuer(algorithms=("RS256",))
    huge = key_with_huge_exponent()
    issuer.extra_jwks.append(public_jwk(huge, "huge-e", "RS256"))
    api = client(guard(issuer, Clock()))
    claims = {"iss": issuer.issuer, "aud": RESOURCE, "sub": "s", "exp": int(NOW) + 60}
    signed = sign_jws({"alg": "RS256", "typ": "at+jwt", "kid": "huge-e"}, claims, huge)
    with caplog.at_level("WARNING", logger="oauthguard"):
        params = assert_refused(api.get("/mcp", headers=bearer(signed)), 401, "invalid_token")
    assert "no signing key" in params["error_description"]
    assert "'huge-e'" in caplog.text and HUGE_E in caplog.text
    good = issuer.token(audience=RESOURCE, now=NOW)
    assert api.get("/mcp", headers=bearer(good)).status_code == 200


OUT_OF_BOUNDS = {
    "exponent 1": (odd_number_of(2048), 1, HUGE_E),
    "even exponent": (odd_number_of(2048), 65536, HUGE_E),
    "exponent of 33 bits": (odd_number_of(2048), 2**32 + 1, HUGE_E),
    "modulus over the maximum": (odd_number_of(MAX_RSA_BITS + 8), 65537, "above"),
    "even modulus": (1 << 2047, 65537, "n is even"),
}


@pytest.mark.parametrize("case", OUT_OF_BOUNDS)
def test_a_jwks_key_out_of_bounds_is_skipped(case: str, caplog: pytest.LogCaptureFixture) -> None:
    n, e, reason = OUT_OF_BOUNDS[case]
    issuer = TestIssuer(algorithms=("RS256",))
    issuer.extra_jwks.append(jwks_rsa(n, e, "weak"))
    api = client(guard(issuer, Clock()))
    with caplog.at_level("WARNING", logger="oauthguard"):
        good = issuer.token(audience=RESOURCE, now=NOW)
        assert api.get("/mcp", headers=bearer(good)).status_code == 200
    assert "skipping JWKS key #1 (kid='weak')" in caplog.text
    assert reason in caplog.text


# -- DPoP proof keys -----------------------------------------------------------------------
def setup_with(private: rsa.RSAPrivateKey | None, jwk: dict[str, str]) -> tuple[Setup, str]:
    """A DPoP setup whose client key is ``jwk`` (signing with ``private``), and a token bound
    to that key: only the key's own checks can refuse its proofs."""
    setup = Setup()
    setup.key = ClientKey("RS256")
    if private is not None:
        setup.key.private = private
    setup.key.jwk = jwk
    return setup, setup.token()


@pytest.mark.anyio
async def test_a_proof_key_with_a_huge_exponent_is_refused() -> None:
    huge = key_with_huge_exponent()
    numbers = huge.public_key().public_numbers()
    setup, token = setup_with(
        huge, {"kty": "RSA", "e": b64_int(numbers.e), "n": b64_int(numbers.n)}
    )
    params = assert_refused(
        await setup.call(token, setup.proof(token)), 401, "invalid_dpop_proof", scheme="DPoP"
    )
    assert params["error_description"] == f"the DPoP proof's RSA key is refused: {HUGE_E}"


@pytest.mark.anyio
async def test_a_proof_key_out_of_bounds_is_refused_before_its_signature_is_checked() -> None:
    # A bad signature too: the answer names the key, so the key was refused before any
    # signature work (checking one needs the key).
    huge = key_with_huge_exponent()
    numbers = huge.public_key().public_numbers()
    setup, token = setup_with(
        huge, {"kty": "RSA", "e": b64_int(numbers.e), "n": b64_int(numbers.n)}
    )
    params = assert_refused(
        await setup.call(token, tamper(setup.proof(token))),
        401,
        "invalid_dpop_proof",
        scheme="DPoP",
    )
    assert params["error_description"] == f"the DPoP proof's RSA key is refused: {HUGE_E}"


@pytest.mark.anyio
async def test_a_proof_key_over_the_proof_maximum_is_refused() -> None:
    n = odd_number_of(MAX_PROOF_RSA_BITS + 1)
    setup, token = setup_with(None, {"kty": "RSA", "e": "AQAB", "n": b64_int(n)})
    params = assert_refused(
        await setup.call(token, setup.proof(token, signer="none")),
        401,
        "invalid_dpop_proof",
        scheme="DPoP",
    )
    assert params["error_description"] == (
        f"the DPoP proof's RSA key is refused: RSA key of {MAX_PROOF_RSA_BITS + 1} bits is "
        f"above {MAX_PROOF_RSA_BITS}"
    )


@pytest.mark.anyio
async def test_a_proof_key_of_the_proof_maximum_passes() -> None:
    setup = Setup()
    setup.key = ClientKey("RS256", rsa_bits=MAX_PROOF_RSA_BITS)
    token = setup.token()
    assert (await setup.call(token, setup.proof(token))).status_code == 200
