"""JWS signature verification (RFC 7518 §3) against signatures made by PyJWT."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding
from jwt.algorithms import get_default_algorithms
from proofs import rsa_key

from oauthguard._jose.signatures import SIGNATURE_ALGORITHMS, verify_signature

PYJWT = get_default_algorithms()
DATA = b"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0"
RSA_KEY = rsa_key(2048)
KEYS: dict[str, Any] = {
    **{alg: RSA_KEY for alg in ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")},
    "ES256": ec.generate_private_key(ec.SECP256R1()),
    "ES384": ec.generate_private_key(ec.SECP384R1()),
    "ES512": ec.generate_private_key(ec.SECP521R1()),
    "EdDSA": ed448.Ed448PrivateKey.generate(),
    "Ed25519": ed25519.Ed25519PrivateKey.generate(),
}


def sign(alg: str, data: bytes = DATA) -> bytes:
    signer = PYJWT.get(alg) or PYJWT["EdDSA"]
    return signer.sign(data, KEYS[alg])


def test_every_algorithm_is_covered() -> None:
    assert set(KEYS) == SIGNATURE_ALGORITHMS


@pytest.mark.parametrize("alg", sorted(KEYS))
def test_a_signature_by_another_library_verifies(alg: str) -> None:
    assert verify_signature(alg, KEYS[alg].public_key(), DATA, sign(alg))


@pytest.mark.parametrize("alg", sorted(KEYS))
def test_other_data_or_a_changed_signature_fails(alg: str) -> None:
    public, signature = KEYS[alg].public_key(), sign(alg)
    assert not verify_signature(alg, public, DATA + b"x", signature)
    changed = bytes([signature[0] ^ 1]) + signature[1:]
    assert not verify_signature(alg, public, DATA, changed)


@pytest.mark.parametrize("alg", ["ES256", "ES384", "ES512"])
def test_ecdsa_signatures_of_the_wrong_length_fail(alg: str) -> None:
    # RFC 7518 §3.4: R || S, each exactly the curve's size; DER or padded forms are refused.
    public, signature = KEYS[alg].public_key(), sign(alg)
    assert not verify_signature(alg, public, DATA, signature[:-1])
    assert not verify_signature(alg, public, DATA, b"\x00" + signature)


def signature_with_a_leading_zero(alg: str) -> tuple[bytes, bytes]:
    """Data and its signature whose first octet is zero (about one in 256 is)."""
    for attempt in range(20_000):
        data = DATA + str(attempt).encode()
        signature = sign(alg, data)
        if signature[0] == 0:
            return data, signature
    raise AssertionError("no signature with a leading zero octet")


@pytest.mark.parametrize("alg", ["RS256", "PS256", "PS512"])
def test_rsa_signatures_of_another_length_than_the_modulus_fail(alg: str) -> None:
    # RFC 8017 §8.1.2 / §8.2.2 step 1: k octets exactly, leading zeros included.
    public = RSA_KEY.public_key()
    data, signature = signature_with_a_leading_zero(alg)
    assert verify_signature(alg, public, data, signature)
    assert not verify_signature(alg, public, data, signature[1:])
    assert not verify_signature(alg, public, data, b"\x00" + signature)


def test_pss_needs_a_salt_as_long_as_the_hash() -> None:
    # RFC 7518 §3.5: a PSS signature with another salt length is not PS256.
    short_salt = RSA_KEY.sign(
        DATA, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=0), hashes.SHA256()
    )
    assert not verify_signature("PS256", RSA_KEY.public_key(), DATA, short_salt)


def test_a_key_of_another_type_or_a_signature_of_another_algorithm_fails() -> None:
    assert not verify_signature("RS256", KEYS["ES256"].public_key(), DATA, sign("RS256"))
    assert not verify_signature("RS256", RSA_KEY.public_key(), DATA, sign("PS256"))
    assert not verify_signature("ES256", KEYS["ES256"].public_key(), DATA, b"")
