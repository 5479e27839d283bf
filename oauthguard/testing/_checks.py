"""What ``TestIssuer``'s token endpoint checks in a grant: RFC 9449 §5 DPoP proofs, RFC 7636
PKCE, RFC 8707 resources, and that a later request asks for no more than was granted."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from urllib.parse import urlsplit

from starlette.responses import JSONResponse, Response

import oauthguard._dpop.proof as dpop
from oauthguard._jose.b64 import b64url_encode
from oauthguard._wire.errors import InvalidDPoPProof

DPOP_WINDOW, DPOP_LEEWAY = 300.0, 30.0
_VERIFIER_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


class OAuthError(Exception):
    """An RFC 6749 §5.2 error response."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status

    def response(self) -> Response:
        headers = {"cache-control": "no-store"}
        if self.status == 401:
            headers["www-authenticate"] = 'Basic realm="token"'
        return JSONResponse(
            {"error": self.error, "error_description": self.description},
            status_code=self.status,
            headers=headers,
        )


def check_dpop_proof(value: str, method: str, url: str, now: float) -> str:
    """RFC 9449 §5: the resource server's proof checks (§4.3) at the token endpoint; the
    thumbprint of the proof's key, for ``cnf.jkt``."""
    try:
        proof = dpop.parse_proof(value)
        dpop.check_proof_typ(proof.header)
        alg = dpop.check_alg(proof.header, frozenset(dpop.DEFAULT_DPOP_ALGORITHMS))
        jwk = dpop.check_jwk(proof.header, alg)
        jkt = dpop.thumbprint(jwk)
        dpop.check_proof_signature(alg, dpop.load_key(jwk), proof)
        dpop.check_jti(proof.claims)
        dpop.check_htm(proof.claims, method)
        dpop.check_htu(proof.claims, url)
        dpop.check_iat(proof.claims, now, max_age=DPOP_WINDOW, leeway=DPOP_LEEWAY)
    except InvalidDPoPProof as error:
        raise OAuthError("invalid_dpop_proof", error.description) from None
    return jkt


def check_pkce(verifier: str | None, challenge: str | None) -> None:
    """RFC 7636 §4.1 and §4.6: S256 of a 43-128 character verifier."""
    if not verifier or not 43 <= len(verifier) <= 128 or not set(verifier) <= _VERIFIER_CHARS:
        raise OAuthError("invalid_grant", "code_verifier is missing or malformed")
    digest = b64url_encode(hashlib.sha256(verifier.encode("ascii")).digest())
    if challenge is None or not secrets.compare_digest(digest, challenge):
        raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge")


def check_resources(values: Sequence[str]) -> tuple[str, ...]:
    """RFC 8707 §2: absolute URIs without a fragment, else ``invalid_target``."""
    for value in values:
        parts = urlsplit(value)
        if not parts.scheme or not parts.netloc or "#" in value:
            raise OAuthError("invalid_target", f"resource {value!r} is not an absolute URI")
    return tuple(dict.fromkeys(values))


def narrow(requested: Sequence[str], granted: tuple[str, ...], error: str) -> tuple[str, ...]:
    """RFC 6749 §6 / RFC 8707 §2.2: a later request may only ask for a subset."""
    if not requested:
        return granted
    if granted and not set(requested) <= set(granted):
        raise OAuthError(error, "the request asks for more than was granted")
    return tuple(dict.fromkeys(requested))
