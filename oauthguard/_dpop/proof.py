"""DPoP at a resource server (RFC 9449): proof checks (§4.3), key binding (§6, §7.1), the
Bearer downgrade (§7.2), server nonces (§9) and replay protection (§11.1).

Each check is a short function; ``DPoPChecker`` runs them for each request, the cheap ones
(header, claims, binding) before the signature and the replay check last. The proof is parsed
with the strict base64url of ``_b64`` and its signature checked directly with ``cryptography``
(``_signatures``), so a request costs one signature verification; a client's header (its key
and thumbprint) is checked once.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, NamedTuple

from oauthguard._dpop.htu import same_uri
from oauthguard._dpop.nonces import DPoPNonces
from oauthguard._dpop.replay import ReplayStore, counted_first_use
from oauthguard._http.cache import ExpiringCache
from oauthguard._jose.b64 import b64url_decode, b64url_encode
from oauthguard._jose.jsonobj import loads as loads_json
from oauthguard._jose.jwk import PRIVATE_MEMBERS, WeakKey, public_key
from oauthguard._jose.signatures import verify_signature
from oauthguard._telemetry import TELEMETRY
from oauthguard._verify.jwt import bound_key
from oauthguard._verify.keys import KEY_TYPES
from oauthguard._wire.credentials import Credentials
from oauthguard._wire.errors import (
    InvalidDPoPProof,
    InvalidRequest,
    InvalidToken,
    MissingCredentials,
    UseDPoPNonce,
)
from oauthguard._wire.tokens import AccessToken

Mode = Literal["allowed", "required", "disabled"]
DEFAULT_DPOP_ALGORITHMS = ("ES256", "EdDSA", "RS256", "PS256")
MAX_PROOF_BYTES = 8192
MAX_JTI_LENGTH = 256
# RFC 9449 §4.2: the proof's media type; compared case-insensitively (RFC 7515 §4.1.9).
PROOF_TYPES = frozenset({"dpop+jwt", "application/dpop+jwt"})
#: The largest RSA modulus of a proof's key, in bits: the client picks the key, and with it
#: what checking its signature costs (a 4096-bit check costs about three 2048-bit ones).
MAX_PROOF_RSA_BITS = 4096
# RFC 7638 §3.2: the required members of each key type, in lexicographic order.
THUMBPRINT_MEMBERS = {
    "EC": ("crv", "kty", "x", "y"),
    "RSA": ("e", "kty", "n"),
    "OKP": ("crv", "kty", "x"),
}
KnownHeader = tuple[dict[str, Any], str, str, Any]  # header, alg, thumbprint, public key


class Proof(NamedTuple):
    """A parsed, not yet verified, DPoP proof JWT (a named tuple: built on every request)."""

    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes


# The named tuple's own __new__ is a Python function; tuple.__new__ builds the same in C.
_new_proof = tuple.__new__


def one_proof(values: tuple[bytes, ...]) -> str:
    """RFC 9449 §4.3 check 1: exactly one ``DPoP`` header field holding one JWT."""
    if not values:
        raise InvalidDPoPProof("the DPoP scheme needs a DPoP header with a proof")
    if len(values) > 1:
        raise InvalidDPoPProof("the request has more than one DPoP header")
    value = values[0]
    if b"," in value:
        raise InvalidDPoPProof("the DPoP header holds more than one value")
    if len(value) > MAX_PROOF_BYTES:
        raise InvalidDPoPProof(f"the DPoP proof is longer than {MAX_PROOF_BYTES} bytes")
    try:
        return value.decode("ascii").strip()
    except UnicodeDecodeError:
        raise InvalidDPoPProof("the DPoP proof is not a JWT") from None


def parse_proof(value: str, header: dict[str, Any] | None = None) -> Proof:
    """RFC 9449 §4.3 check 2: a well-formed compact JWS (RFC 7515 §7.1) with JSON objects.

    ``header``: the header already parsed from this same first segment, if any.
    """
    parts = value.split(".")
    if len(parts) != 3:
        raise InvalidDPoPProof("the DPoP proof is not a JWT (three dot-separated parts)")
    try:
        # UTF-8 JSON (RFC 7519 §7.2); decoding first spares json.loads its sniffing.
        if header is None:
            header = loads_json(b64url_decode(parts[0]).decode("utf-8"))
        claims = loads_json(b64url_decode(parts[1]).decode("utf-8"))
        signature = b64url_decode(parts[2])
    except (ValueError, RecursionError):  # UnicodeError and JSONDecodeError are ValueErrors
        raise InvalidDPoPProof("the DPoP proof is not a well-formed JWT") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise InvalidDPoPProof("the DPoP proof's header and payload must be JSON objects")
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
    return _new_proof(Proof, (header, claims, signing_input, signature))


def check_proof_typ(header: Mapping[str, Any]) -> None:
    """RFC 9449 §4.3 check 4: ``typ`` is ``dpop+jwt`` (RFC 8725 §3.11 explicit typing)."""
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in PROOF_TYPES:
        raise InvalidDPoPProof("the DPoP proof's typ is not dpop+jwt")


def check_alg(header: Mapping[str, Any], algorithms: frozenset[str]) -> str:
    """RFC 9449 §4.3 check 5: an asymmetric algorithm we allow; never ``none`` or MAC."""
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in algorithms:
        raise InvalidDPoPProof(
            f"the DPoP proof's alg {str(alg)[:20]!r} is not accepted "
            f"(accepted: {' '.join(sorted(algorithms))})"
        )
    # RFC 7515 §4.1.11: we understand no extension, so any 'crit' is fatal.
    if "crit" in header:
        raise InvalidDPoPProof("the DPoP proof has critical header parameters")
    return alg


def check_jwk(header: Mapping[str, Any], alg: str) -> dict[str, Any]:
    """RFC 9449 §4.3 check 7: ``jwk`` is a public key (no private members, not ``oct``) whose
    type and curve fit ``alg`` (RFC 8725 §3.1)."""
    jwk = header.get("jwk")
    if not isinstance(jwk, dict):
        raise InvalidDPoPProof("the DPoP proof has no jwk header")
    if jwk.get("kty") == "oct" or not PRIVATE_MEMBERS.isdisjoint(jwk):
        raise InvalidDPoPProof("the DPoP proof's jwk must be a public key")
    kty, crvs = KEY_TYPES[alg]
    crv = jwk.get("crv")
    if jwk.get("kty") != kty or not isinstance(crv, str | None) or crv not in crvs:
        raise InvalidDPoPProof(f"the DPoP proof's jwk cannot verify {alg}")
    if jwk.get("alg", alg) != alg:
        raise InvalidDPoPProof("the DPoP proof's jwk is declared for another alg")
    return jwk


def thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 §3: the base64url SHA-256 of the required members, sorted, no whitespace."""
    members = THUMBPRINT_MEMBERS[jwk["kty"]]
    required = {name: jwk.get(name) for name in members}
    if not all(isinstance(value, str) for value in required.values()):
        raise InvalidDPoPProof("the DPoP proof's jwk lacks required members")
    canonical = json.dumps(required, separators=(",", ":")).encode()
    return b64url_encode(hashlib.sha256(canonical).digest())


def load_key(jwk: Mapping[str, Any]) -> Any:
    """The public key built from exactly the thumbprint's members (RFC 8725 §3.4: cryptography
    checks that an EC point is on its curve); an RSA key only of ``MIN_RSA_BITS`` to
    ``MAX_PROOF_RSA_BITS`` bits with an exponent up to ``MAX_RSA_EXPONENT``, as its sender
    chose what checking its signature costs."""
    members = {name: jwk[name] for name in THUMBPRINT_MEMBERS[jwk["kty"]]}
    try:
        return public_key(members, max_rsa_bits=MAX_PROOF_RSA_BITS)
    except WeakKey as weak:
        raise InvalidDPoPProof(f"the DPoP proof's RSA key is refused: {weak}") from None
    except ValueError:  # any malformed key material is a bad proof
        raise InvalidDPoPProof("the DPoP proof's jwk is not a valid public key") from None


def check_proof_signature(alg: str, key: Any, proof: Proof) -> None:
    """RFC 9449 §4.3 check 6: the signature verifies with the header's ``jwk``."""
    if not verify_signature(alg, key, proof.signing_input, proof.signature):
        raise InvalidDPoPProof("the DPoP proof's signature does not verify")


def check_jti(claims: Mapping[str, Any]) -> str:
    """RFC 9449 §4.2 and §4.3 check 3: a ``jti`` string of bounded length."""
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI_LENGTH:
        raise InvalidDPoPProof(f"the DPoP proof needs a jti of 1 to {MAX_JTI_LENGTH} characters")
    return jti


def check_htm(claims: Mapping[str, Any], method: str) -> None:
    """RFC 9449 §4.3 check 8: ``htm`` is the request's method (case-sensitive, RFC 9110 §9.1)."""
    htm = claims.get("htm")
    if not isinstance(htm, str):
        raise InvalidDPoPProof("the DPoP proof has no htm claim")
    if htm != method:
        raise InvalidDPoPProof("the DPoP proof's htm does not match the request method")


def check_htu(claims: Mapping[str, Any], uri: str) -> str:
    """RFC 9449 §4.3 check 9: ``htu`` is the request URI without query and fragment, compared
    after RFC 3986 §6.2.2/§6.2.3 normalization."""
    htu = claims.get("htu")
    if not isinstance(htu, str):
        raise InvalidDPoPProof("the DPoP proof has no htu claim")
    if "?" in htu or "#" in htu:  # RFC 9449 §4.2: htu has no query and no fragment
        raise InvalidDPoPProof("the DPoP proof's htu must not have a query or fragment")
    if not same_uri(htu, uri):
        raise InvalidDPoPProof("the DPoP proof's htu does not match the request URI")
    return htu


def check_iat(claims: Mapping[str, Any], now: float, max_age: float, leeway: float) -> float:
    """RFC 9449 §4.3 check 11 and §11.1: ``iat`` at most ``max_age`` old, at most ``leeway``
    in the future."""
    iat = claims.get("iat")
    # An int is compared as it is: math.isfinite() cannot convert one beyond float range.
    if (
        isinstance(iat, bool)
        or not isinstance(iat, int | float)
        or (isinstance(iat, float) and not math.isfinite(iat))
    ):
        raise InvalidDPoPProof("the DPoP proof needs a numeric iat claim")
    if iat < now - max_age:
        raise InvalidDPoPProof("the DPoP proof is too old (iat)")
    if iat > now + leeway:
        raise InvalidDPoPProof("the DPoP proof was issued in the future (iat)")
    return float(iat)


def access_token_hash(token: str) -> str:
    """RFC 9449 §4.2: base64url(SHA-256(ASCII(access token)))."""
    return b64url_encode(hashlib.sha256(token.encode("ascii")).digest())


def check_ath(claims: Mapping[str, Any], token_hash: str) -> None:
    """RFC 9449 §4.3 check 12: ``ath`` is the hash of the presented access token
    (``token_hash``, from ``access_token_hash``)."""
    ath = claims.get("ath")
    if not isinstance(ath, str):
        raise InvalidDPoPProof("the DPoP proof has no ath claim for the access token")
    if ath != token_hash:
        raise InvalidDPoPProof("the DPoP proof's ath does not match the access token")


def check_binding(token: AccessToken, jkt: str) -> None:
    """RFC 9449 §6 and §7.1: the token is bound (``cnf.jkt``) to the proof's key."""
    if token.jkt is None:
        raise InvalidToken(
            "the access token is not bound to a DPoP key (no cnf.jkt)", scheme="DPoP"
        )
    if token.jkt != jkt:
        raise InvalidToken("invalid DPoP key binding", scheme="DPoP")


def check_bearer(token: AccessToken) -> None:
    """RFC 9449 §7.2: a DPoP-bound token is never accepted as a bearer token; §6.2: neither
    is one that introspection calls ``token_type`` DPoP."""
    cnf = token.claims.get("cnf")
    if cnf is not None and token.jkt is None:
        bound_key(cnf)  # RFC 7800 §3: a binding we cannot check is never a bearer token
    token_type = token.claims.get("token_type")
    if token.jkt is not None or (isinstance(token_type, str) and token_type.lower() == "dpop"):
        raise InvalidToken(
            "the access token is DPoP-bound; send it with the DPoP scheme and a DPoP proof",
            scheme="Bearer",
        )


def replay_key(jkt: str, htm: str, htu: str, jti: str) -> str:
    """RFC 9449 §11.1: a proof's identity, per key and target, as a fixed-length digest."""
    # BLAKE2b (in CPython itself): half the instructions of OpenSSL's SHA-256 for a key this short.
    return hashlib.blake2b(f"{jkt}\n{htm}\n{htu}\n{jti}".encode(), digest_size=32).hexdigest()


class DPoPChecker:
    """Runs the DPoP checks of one guard; see ``OAuthGuard`` for the settings."""

    def __init__(
        self,
        *,
        mode: Mode,
        algorithms: Iterable[str],
        max_age: float,
        leeway: float,
        nonces: DPoPNonces | None,
        replay_store: ReplayStore,
        clock: Callable[[], float],
    ) -> None:
        self.mode = mode
        self.algorithms = frozenset(algorithms)
        self.max_age = max_age
        self.leeway = leeway
        self.nonces = nonces
        self.replay_store = replay_store
        self.clock = clock
        # Proof header segment -> (header, alg, thumbprint, key), kept once a proof under it
        # verified: a client signs every proof under one header, so its checks, thumbprint
        # and key are computed once per client rather than once per request.
        self._headers: ExpiringCache[KnownHeader] = ExpiringCache(1024)

    def proof_of(self, credentials: Credentials) -> str | None:
        """The request's proof, after the checks of its shape (RFC 9449 §7.1, §7.2)."""
        if credentials.scheme == "DPoP":
            if self.mode == "disabled":
                raise MissingCredentials("this resource does not accept DPoP")
            return one_proof(credentials.dpop_proofs)
        if self.mode == "required":
            raise InvalidToken(
                "this resource accepts only DPoP-bound access tokens "
                "(Authorization: DPoP with a DPoP proof)",
                scheme="DPoP",
            )
        if credentials.dpop_proofs and self.mode != "disabled":
            raise InvalidRequest(
                "a DPoP proof came with the Bearer scheme; send a DPoP-bound "
                "token with Authorization: DPoP",
                scheme="both",
            )
        return None

    async def check(
        self,
        method: str,
        htu: str,
        proof_value: str,
        token: AccessToken,
        token_hash: str,
    ) -> str | None:
        """RFC 9449 §4.3 and §7.1 for a request to ``method`` ``htu`` with ``token`` (whose
        SHA-256 is ``token_hash``, for ``ath``): a fresh nonce to send, if any, or the
        ``GuardError`` that refuses the request."""
        now = self.clock()
        head = proof_value.partition(".")[0]
        known = self._headers.get(head, now)
        proof = parse_proof(proof_value, known[0] if known is not None else None)
        alg, jkt = (known[1], known[2]) if known is not None else self._check_header(proof.header)
        # RFC 9449 §4.3: a proof passes only if every check does, so their order weakens none;
        # the cheap ones come first, and no signature work is done for a proof they refuse.
        claims = proof.claims
        jti = check_jti(claims)
        check_htm(claims, method)
        checked_htu = check_htu(claims, htu)
        iat = check_iat(claims, now, self.max_age, self.leeway)
        check_ath(claims, token_hash)
        fresh_nonce = self._check_nonce(claims, now)
        check_binding(token, jkt)
        key = known[3] if known is not None else load_key(proof.header["jwk"])
        check_proof_signature(alg, key, proof)
        if known is None:
            self._headers.put(head, (proof.header, alg, jkt, key), now + 600, now)
        # RFC 9449 §11.1: recorded last, once the proof is known to be the key holder's (a
        # forged one must not use up the jti of another), for as long as it could pass.
        ttl = max(iat + self.max_age - now, 0) + self.leeway + 1
        key = replay_key(jkt, method, checked_htu, jti)
        if TELEMETRY.metrics is None:
            first = await self.replay_store.first_use(key, ttl)
        else:
            first = await counted_first_use(self.replay_store, key, ttl, TELEMETRY.metrics)
        if not first:
            raise InvalidDPoPProof("the DPoP proof was already used (jti replay)")
        return fresh_nonce

    def _check_header(self, header: Mapping[str, Any]) -> tuple[str, str]:
        """RFC 9449 §4.3 checks 4, 5 and 7 on a proof header; its alg and key thumbprint."""
        check_proof_typ(header)
        alg = check_alg(header, self.algorithms)
        return alg, thumbprint(check_jwk(header, alg))

    def _check_nonce(self, claims: Mapping[str, Any], now: float) -> str | None:
        """RFC 9449 §4.3 check 10 and §9: our nonce, when nonces are on; a fresh nonce to send
        once the client's is from the previous window."""
        if self.nonces is None:
            return None
        age = self.nonces.age(claims.get("nonce"), now)
        if age is None:
            reason = "is stale or invalid" if "nonce" in claims else "is missing"
            raise UseDPoPNonce(
                f"the DPoP proof's nonce {reason}; use the DPoP-Nonce given",
                nonce=self.nonces.issue(now),
            )
        return self.nonces.issue(now) if age else None
