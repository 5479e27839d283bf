"""Keys for tests: a pool of generated keys, public JWKs, signed JWS, DPoP client keys."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm, get_default_algorithms

from oauthguard._dpop.proof import thumbprint
from oauthguard._jose.b64 import b64url_encode

KEY_FACTORIES: dict[str, Callable[[], Any]] = {
    "RS256": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "PS256": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "ES256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "ES384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "EdDSA": lambda: ed25519.Ed25519PrivateKey.generate(),
}


class KeyPool:
    """Private keys made once and handed out in turn, ``size`` per algorithm.

    Making an RSA key takes tens of milliseconds; a test suite that builds hundreds of
    issuers can give them one pool (``TestIssuer(key_pool=pool)``, or
    ``TestIssuer.default_key_pool = pool`` once for the whole run). Issuers that share a pool
    may share keys (each has its own ``kid``s), so a test that needs a key nobody else has
    uses an issuer without one. ``rotate`` still gets a key other than the current one.
    """

    __test__ = False

    def __init__(self, size: int = 4) -> None:
        if size < 2:
            raise ValueError("a KeyPool needs at least two keys per algorithm, for rotation")
        self.size = size
        self._keys: dict[str, list[Any]] = {}
        self._turn: dict[str, int] = {}

    def key(self, alg: str) -> Any:
        """The next key for ``alg``, made on first use."""
        keys = self._keys.setdefault(alg, [])
        turn = self._turn.get(alg, 0)
        self._turn[alg] = turn + 1
        if len(keys) < self.size:
            keys.append(KEY_FACTORIES[alg]())
            return keys[-1]
        return keys[turn % self.size]


def public_jwk(private_key: Any, kid: str | None = None, alg: str | None = None) -> dict[str, Any]:
    """The public JWK of a ``cryptography`` private (or public) key."""
    public = private_key.public_key() if hasattr(private_key, "public_key") else private_key
    if isinstance(public, rsa.RSAPublicKey):
        jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(public))
    elif isinstance(public, ec.EllipticCurvePublicKey):
        jwk = json.loads(ECAlgorithm.to_jwk(public))
    else:
        jwk = json.loads(OKPAlgorithm.to_jwk(public))
    if kid is not None:
        jwk["kid"] = kid
    if alg is not None:
        jwk["alg"] = alg
    jwk.setdefault("use", "sig")
    return jwk


def sign_jws(
    header: Mapping[str, Any], payload: Mapping[str, Any] | bytes, key: Any, alg: str | None = None
) -> str:
    """A compact JWS over exactly this header and payload (no header is added or checked).

    ``alg`` selects the signing algorithm (default: the header's); ``"none"`` gives an
    empty signature. ``key`` may be a private key, or bytes for HS* forgeries.
    """
    alg = alg or header["alg"]
    head = b64url_encode(json.dumps(dict(header), separators=(",", ":")).encode())
    body = payload if isinstance(payload, bytes) else json.dumps(dict(payload)).encode()
    signing_input = f"{head}.{b64url_encode(body)}"
    if alg == "none":
        return signing_input + "."
    algorithm = get_default_algorithms()[alg]
    if isinstance(key, bytes):  # HMAC with a chosen secret: pyjwt refuses PEM-looking keys
        import hashlib
        import hmac

        digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
        signature = hmac.new(key, signing_input.encode(), digest[alg]).digest()
    else:
        signature = algorithm.sign(signing_input.encode(), key)
    return f"{signing_input}.{b64url_encode(signature)}"


class DPoPKey:
    """A DPoP client's key pair: makes proofs (RFC 9449 §4.2) for tests.

    >>> key = DPoPKey()
    >>> token = issuer.token(audience=RESOURCE, jkt=key.thumbprint)
    >>> headers = {"Authorization": f"DPoP {token}",
    ...            "DPoP": key.proof("GET", "https://api.test/mcp", token=token)}
    """

    def __init__(self, alg: str = "ES256") -> None:
        self.alg = alg
        self.private_key = KEY_FACTORIES[alg]()
        jwk = public_jwk(self.private_key)
        jwk.pop("use", None)
        #: The public JWK that goes in the proof's header.
        self.jwk: dict[str, Any] = jwk

    @property
    def thumbprint(self) -> str:
        """RFC 7638 SHA-256 thumbprint: the ``cnf.jkt`` of tokens bound to this key."""
        return thumbprint(self.jwk)

    def proof(
        self,
        method: str,
        url: str,
        *,
        token: str | None = None,
        nonce: str | None = None,
        now: float | None = None,
        claims: Mapping[str, Any] | None = None,
        headers: Mapping[str, Any] | None = None,
    ) -> str:
        """A proof for one request. ``claims``/``headers`` override or, with None, remove."""
        payload: dict[str, Any] = {
            "jti": uuid.uuid4().hex,
            "htm": method,
            "htu": url,
            "iat": int(time.time() if now is None else now),
        }
        if token is not None:
            payload["ath"] = b64url_encode(hashlib.sha256(token.encode()).digest())
        if nonce is not None:
            payload["nonce"] = nonce
        header: dict[str, Any] = {"typ": "dpop+jwt", "alg": self.alg, "jwk": self.jwk}
        override_members(payload, claims)
        override_members(header, headers)
        return sign_jws(header, payload, self.private_key, self.alg)


def override_members(target: dict[str, Any], changes: Mapping[str, Any] | None) -> None:
    """Set each of ``changes`` in ``target``; a None value removes the member instead."""
    for name, value in (changes or {}).items():
        if value is None:
            target.pop(name, None)
        else:
            target[name] = value
