"""Public keys from JWKs (RFC 7517, RFC 7518 §6, RFC 8037 §2), built with ``cryptography``.

Every member is read with the strict base64url of ``_b64`` (canonical, RFC 4648 §3.5), and an
RSA key is checked against its bounds before any key object exists, so no signature is ever
checked with a modulus or exponent whose cost the sender chose.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from oauthguard._jose.b64 import b64url_decode

#: The RSA moduli accepted, in bits: RFC 7518 §3.3's minimum, and a ceiling that keeps a
#: verification within a few times the cost of a 2048-bit one (it grows with the square).
MIN_RSA_BITS, MAX_RSA_BITS = 2048, 8192
#: The largest public exponent accepted (65537 is the common one; verification costs one
#: modular squaring per bit of ``e``, so ``e`` stays within 32 bits).
MAX_RSA_EXPONENT = 2**32 - 1
# RFC 7517 §9.3 / RFC 7518 §6: members only a private (or symmetric) key has.
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
# RFC 7518 §6.2.1.1-6.2.1.3: each curve, and the full size of its coordinates.
_CURVES: Mapping[str, tuple[ec.EllipticCurve, int]] = {
    "P-256": (ec.SECP256R1(), 32),
    "P-384": (ec.SECP384R1(), 48),
    "P-521": (ec.SECP521R1(), 66),
}
# RFC 8037 §2: the signature curves of OKP keys (X25519 and X448 are for key agreement).
_EDWARDS: Mapping[str, Callable[[bytes], Any]] = {
    "Ed25519": ed25519.Ed25519PublicKey.from_public_bytes,
    "Ed448": ed448.Ed448PublicKey.from_public_bytes,
}


class WeakKey(ValueError):
    """An RSA key outside the bounds: modulus size, or public exponent."""


def member(jwk: Mapping[str, Any], name: str) -> bytes:
    """The bytes of a base64url member; ``ValueError`` when absent or not canonical."""
    value = jwk.get(name)
    if not isinstance(value, str):
        raise ValueError(f"{name} is missing or not a string")
    try:
        return b64url_decode(value)
    except ValueError as exc:
        raise ValueError(f"{name} is not canonical base64url: {exc}") from None


def check_rsa_numbers(n: int, e: int, max_bits: int = MAX_RSA_BITS) -> None:
    """``WeakKey`` unless ``n`` has ``MIN_RSA_BITS`` to ``max_bits`` bits and is odd, and ``e``
    is odd, from 3 to ``MAX_RSA_EXPONENT`` and below ``n`` (RFC 8017 §3.1)."""
    bits = n.bit_length()
    if bits < MIN_RSA_BITS:
        raise WeakKey(f"RSA key of {bits} bits is below {MIN_RSA_BITS}")
    if bits > max_bits:
        raise WeakKey(f"RSA key of {bits} bits is above {max_bits}")
    if not n & 1:
        raise WeakKey("RSA modulus n is even")
    if not (e & 1 and 3 <= e <= MAX_RSA_EXPONENT):
        raise WeakKey("RSA exponent e must be odd, from 3 to 2^32-1")


def rsa_key(jwk: Mapping[str, Any], max_bits: int = MAX_RSA_BITS) -> rsa.RSAPublicKey:
    """RFC 7518 §6.3.1: an RSA public key from ``n`` and ``e``, within the bounds."""
    n = int.from_bytes(member(jwk, "n"), "big")
    e = int.from_bytes(member(jwk, "e"), "big")
    check_rsa_numbers(n, e, max_bits)
    return rsa.RSAPublicNumbers(e, n).public_key()


def ec_key(jwk: Mapping[str, Any]) -> ec.EllipticCurvePublicKey:
    """RFC 7518 §6.2.1: an EC public key; RFC 8725 §3.4: the point is on its curve."""
    crv = jwk.get("crv")
    curve = _CURVES.get(crv) if isinstance(crv, str) else None
    if curve is None:
        raise ValueError(f"crv {str(crv)[:20]!r} is not P-256, P-384 or P-521")
    x, y = member(jwk, "x"), member(jwk, "y")
    if len(x) != curve[1] or len(y) != curve[1]:  # RFC 7518 §6.2.1.2-6.2.1.3: full size
        raise ValueError(f"x and y must be {curve[1]} bytes for {crv}")
    numbers = ec.EllipticCurvePublicNumbers(
        int.from_bytes(x, "big"), int.from_bytes(y, "big"), curve[0]
    )
    return numbers.public_key()  # ValueError for a point off the curve


def okp_key(jwk: Mapping[str, Any]) -> Any:
    """RFC 8037 §2: an Ed25519 or Ed448 public key from ``x``."""
    crv = jwk.get("crv")
    load = _EDWARDS.get(crv) if isinstance(crv, str) else None
    if load is None:
        raise ValueError(f"crv {str(crv)[:20]!r} is not Ed25519 or Ed448")
    try:
        return load(member(jwk, "x"))  # ValueError for a wrong length
    except UnsupportedAlgorithm:
        raise ValueError(f"{crv} is not supported by this build of OpenSSL") from None


def public_key(jwk: Mapping[str, Any], max_rsa_bits: int = MAX_RSA_BITS) -> Any:
    """The ``cryptography`` public key of an RSA, EC or OKP JWK; ``ValueError`` (``WeakKey``
    for an RSA key outside the bounds) for any other type, private members or bad material.

    OpenID Connect Discovery 1.0 §3: a published key set holds no private key values; a JWK
    with them is refused, not reduced to its public half (its private key is no secret).
    """
    if not PRIVATE_MEMBERS.isdisjoint(jwk):
        raise ValueError("the JWK holds private key members")
    kty = jwk.get("kty")
    if kty == "RSA":
        return rsa_key(jwk, max_rsa_bits)
    if kty == "EC":
        return ec_key(jwk)
    if kty == "OKP":
        return okp_key(jwk)
    raise ValueError(f"kty {str(kty)[:20]!r} cannot verify asymmetric signatures")
