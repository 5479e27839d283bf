"""DPoP proofs for tests, hand-built with ``cryptography`` (independent of oauthguard).

Every proof is a compact JWS assembled here byte by byte, so tests can also build the
broken ones (``alg: none``, HMAC, private keys in the header, bad signatures).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import uuid
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

#: Test-only RSA keys of the sizes that are slow to make (``rsa-<bits>.pem``).
STORED_KEYS = Path(__file__).resolve().parent / "keys"


class _Remove:
    """A value meaning "leave this member out" (with a stable repr, for test ids)."""

    def __repr__(self) -> str:
        return "REMOVE"


REMOVE = _Remove()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int(value: int, size: int | None = None) -> str:
    size = size or (value.bit_length() + 7) // 8
    return b64(value.to_bytes(size, "big"))


def ath(token: str) -> str:
    return b64(hashlib.sha256(token.encode()).digest())


@functools.cache
def stored_rsa_keys(name: str) -> tuple[rsa.RSAPrivateKey, ...]:
    """The test-only RSA keys of ``tests/keys/<name>.pem``, in the file's order."""
    text = (STORED_KEYS / f"{name}.pem").read_bytes()
    end = b"-----END PRIVATE KEY-----"
    keys = []
    for block in text.split(end)[:-1]:
        # Our own file: the consistency check of a loaded key (primality of p and q) would
        # cost a third of making one.
        key = serialization.load_pem_private_key(
            block + end, password=None, unsafe_skip_rsa_key_validation=True
        )
        assert isinstance(key, rsa.RSAPrivateKey), name
        keys.append(key)
    return tuple(keys)


@functools.cache
def rsa_key(bits: int, public_exponent: int = 65537) -> rsa.RSAPrivateKey:
    """The RSA key of ``bits`` bits of this process: stored in ``tests/keys`` for the sizes
    the suite uses (``rsa-<bits>.pem``, ``rsa-<bits>-e<exponent>.pem``), else made once."""
    # Making an RSA key takes ~70 ms at 2048 bits (~0.3 s with exponent 3) and ~1 s at 4096,
    # the largest share of the suite's CPU when every RSA ClientKey made its own: the RSA
    # keys of one process share one key per size. (No test uses two RSA client keys of one
    # size at once; EC and EdDSA keys, which cost microseconds, stay one per ClientKey.)
    name = f"rsa-{bits}" if public_exponent == 65537 else f"rsa-{bits}-e{public_exponent}"
    if (STORED_KEYS / f"{name}.pem").exists():
        (key,) = stored_rsa_keys(name)
        assert key.key_size == bits and key.public_key().public_numbers().e == public_exponent
        return key
    return rsa.generate_private_key(public_exponent=public_exponent, key_size=bits)


_rsa_key = rsa_key  # the name it had


class ClientKey:
    """A client key pair for one algorithm: its public JWK, thumbprint and proofs (RSA client
    keys of one size are one key in a process)."""

    def __init__(self, alg: str = "ES256", rsa_bits: int = 2048) -> None:
        self.alg = alg
        if alg.startswith("ES"):
            curve = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1()}[alg]
            self.private: Any = ec.generate_private_key(curve)
            numbers = self.private.public_key().public_numbers()
            size = (curve.key_size + 7) // 8
            self.jwk = {
                "kty": "EC",
                "crv": {"ES256": "P-256", "ES384": "P-384"}[alg],
                "x": _int(numbers.x, size),
                "y": _int(numbers.y, size),
            }
        elif alg == "EdDSA":
            self.private = ed25519.Ed25519PrivateKey.generate()
            raw = self.private.public_key().public_bytes_raw()
            self.jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64(raw)}
        else:
            self.private = rsa_key(rsa_bits)
            numbers = self.private.public_key().public_numbers()
            self.jwk = {"kty": "RSA", "e": _int(numbers.e), "n": _int(numbers.n)}

    @property
    def thumbprint(self) -> str:
        """RFC 7638 §3.1: required members, lexicographic order, no whitespace."""
        canonical = json.dumps(self.jwk, sort_keys=True, separators=(",", ":"))
        return b64(hashlib.sha256(canonical.encode()).digest())

    def sign(self, data: bytes) -> bytes:
        if self.alg.startswith("ES"):
            r, s = decode_dss_signature(
                self.private.sign(
                    data, ec.ECDSA(hashes.SHA256() if self.alg == "ES256" else hashes.SHA384())
                )
            )
            size = 32 if self.alg == "ES256" else 48
            return r.to_bytes(size, "big") + s.to_bytes(size, "big")
        if self.alg == "EdDSA":
            return bytes(self.private.sign(data))
        if self.alg == "PS256":
            return bytes(
                self.private.sign(
                    data,
                    padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                    hashes.SHA256(),
                )
            )
        return bytes(self.private.sign(data, padding.PKCS1v15(), hashes.SHA256()))

    def proof(
        self,
        method: str,
        url: str,
        *,
        now: float,
        token: str | None = None,
        nonce: str | None = None,
        claims: dict[str, Any] | None = None,
        header: dict[str, Any] | None = None,
        signer: str | None = None,
        hmac_key: bytes = b"a-shared-secret",
    ) -> str:
        """A proof; ``claims``/``header`` override members (``REMOVE`` drops one).
        ``signer="none"`` leaves the signature empty, ``"hmac"`` signs with HS256."""
        body: dict[str, Any] = {"jti": uuid.uuid4().hex, "htm": method, "htu": url, "iat": int(now)}
        if token is not None:
            body["ath"] = ath(token)
        if nonce is not None:
            body["nonce"] = nonce
        head: dict[str, Any] = {"typ": "dpop+jwt", "alg": self.alg, "jwk": dict(self.jwk)}
        for target, changes in ((body, claims), (head, header)):
            for name, value in (changes or {}).items():
                if value is REMOVE:
                    target.pop(name, None)
                else:
                    target[name] = value
        signing_input = (
            b64(json.dumps(head).encode()) + "." + b64(json.dumps(body).encode())
        ).encode()
        if signer == "none":
            signature = b""
        elif signer == "hmac":
            signature = hmac.new(hmac_key, signing_input, hashlib.sha256).digest()
        else:
            signature = self.sign(signing_input)
        return signing_input.decode() + "." + b64(signature)


def tamper(proof: str) -> str:
    """The same proof with one bit of its signature flipped."""
    head, body, signature = proof.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[len(raw) // 2] ^= 1
    return f"{head}.{body}.{b64(bytes(raw))}"
