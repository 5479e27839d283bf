"""How oauthguard authenticates as a client to an authorization server's endpoints:
introspection (RFC 7662 §2.1) and the token endpoint of a token exchange (RFC 8693 §2.1).

``client_secret_basic`` (RFC 6749 §2.3.1), ``client_secret_post`` (RFC 6749 §2.3.1) and
``private_key_jwt`` (RFC 7523 §2.2, the assertion of RFC 7523 §3).
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

import jwt as pyjwt
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from oauthguard._wire.errors import ConfigurationError

AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt")
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: Lifetime of a client assertion: short, it is used once (RFC 7523 §3, item 4).
ASSERTION_LIFETIME = 60
_RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_CURVE_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private key for client assertions, with the algorithm and ``kid`` to sign with."""

    key: Any
    alg: str
    kid: str | None = None


def load_signing_key(value: object) -> SigningKey:
    """A ``SigningKey`` from a ``cryptography`` private key, PEM text or bytes, or a JWK.

    Raises ``ConfigurationError`` saying what is wrong with ``private_key``.
    """
    kid: str | None = None
    alg: str | None = None
    if isinstance(value, str) and value.lstrip().startswith("{"):
        value = _json_object(value)
    if isinstance(value, Mapping):
        kid, alg = value.get("kid"), value.get("alg")
        key = _from_jwk(value)
    elif isinstance(value, (str, bytes)):
        key = _from_pem(value.encode() if isinstance(value, str) else value)
    else:
        key = value
    expected = _algorithm_for(key)
    fitting = _RSA_ALGORITHMS if expected == "RS256" else {expected}
    if alg is not None and alg not in fitting:
        raise ConfigurationError(f"private_key: the JWK's alg {alg!r} does not fit its key")
    return SigningKey(key, alg or expected, kid if isinstance(kid, str) else None)


def client_credentials(
    group: str, auth_method: str, client_secret: object, private_key: object
) -> SigningKey | None:
    """The signing key of a settings ``group`` (``Introspection``, ``TokenExchange``) for
    its ``auth_method``, after checking it was given what that method needs."""
    if auth_method == "private_key_jwt":
        if private_key is None:
            raise ConfigurationError(
                f"{group}(auth_method='private_key_jwt') needs private_key= "
                "(a cryptography key, PEM or JWK)"
            )
        return load_signing_key(private_key)
    if private_key is not None:
        raise ConfigurationError(
            f"{group}: private_key is given but auth_method is {auth_method!r}; "
            "use auth_method='private_key_jwt'"
        )
    if not isinstance(client_secret, str) or not client_secret:
        raise ConfigurationError(
            f"{group}(auth_method={auth_method!r}) needs client_secret= (a non-empty string)"
        )
    return None


def _json_object(text: str) -> Mapping[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        raise ConfigurationError("private_key looks like a JWK but is not valid JSON") from None
    if not isinstance(value, dict):
        raise ConfigurationError("private_key: a JWK must be a JSON object")
    return value


def _from_jwk(jwk: Mapping[str, Any]) -> Any:
    if "d" not in jwk:
        raise ConfigurationError("private_key: the JWK is a public key (it has no 'd')")
    readers: dict[str, Callable[[str], Any]] = {
        "RSA": RSAAlgorithm.from_jwk,
        "EC": ECAlgorithm.from_jwk,
        "OKP": OKPAlgorithm.from_jwk,
    }
    reader = readers.get(str(jwk.get("kty")))
    if reader is None:
        raise ConfigurationError(
            f"private_key: JWK kty {jwk.get('kty')!r} cannot sign "
            "client assertions (use RSA, EC or OKP)"
        )
    try:
        return reader(json.dumps(dict(jwk)))
    except Exception as exc:
        raise ConfigurationError(f"private_key: the JWK cannot be read ({exc})") from None


def _from_pem(data: bytes) -> Any:
    try:
        return load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(
            f"private_key is not an unencrypted PEM private key ({exc}); decrypt it first "
            "or pass a cryptography private key object"
        ) from None


def _algorithm_for(key: Any) -> str:
    """RFC 7518 §3.1 / RFC 8037 §3.1: the signing algorithm of the key's type."""
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < 2048:
            raise ConfigurationError("private_key: RSA keys need at least 2048 bits")
        return "RS256"
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in _CURVE_ALGORITHMS:
        return _CURVE_ALGORITHMS[key.curve.name]
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
        return "EdDSA"
    raise ConfigurationError(
        "private_key must be an RSA, EC (P-256/384/521) or Ed25519 private key, given as a "
        f"cryptography key, PEM or JWK; got {type(key).__name__}"
    )


def form_encode(value: str) -> str:
    """RFC 6749 §2.3.1 / Appendix B: application/x-www-form-urlencoded, before Basic."""
    return quote_plus(value, safe="")


class ClientAuthentication:
    """The form fields and headers that authenticate one request of this client.

    ``settings`` names the settings group in messages (``Introspection``, ``TokenExchange``).
    """

    def __init__(
        self,
        method: str,
        client_id: str,
        *,
        client_secret: str | None = None,
        signing_key: SigningKey | None = None,
        clock: Callable[[], float],
        settings: str = "Introspection",
    ) -> None:
        self.method = method
        self.client_id = client_id
        self._secret = client_secret or ""
        self._signing_key = signing_key
        self._clock = clock
        self._missing_key = (
            f"{settings}(auth_method='private_key_jwt') needs private_key= "
            "(a cryptography private key, PEM or a private JWK)"
        )
        if method == "private_key_jwt" and signing_key is None:
            raise ConfigurationError(self._missing_key)
        pair = f"{form_encode(client_id)}:{form_encode(self._secret)}"
        self._basic = "Basic " + base64.b64encode(pair.encode()).decode("ascii")

    def apply(self, form: dict[str, str], headers: dict[str, str], audience: str) -> None:
        """Add this client's credentials to a request to ``audience`` (the endpoint URL)."""
        if self.method == "client_secret_basic":
            headers["authorization"] = self._basic
        elif self.method == "client_secret_post":
            form["client_id"], form["client_secret"] = self.client_id, self._secret
        else:
            form["client_id"] = self.client_id
            form["client_assertion_type"] = ASSERTION_TYPE
            form["client_assertion"] = self.assertion(audience)

    def assertion(self, audience: str) -> str:
        """RFC 7523 §3: iss = sub = client_id, aud, a fresh jti and a short exp."""
        key = self._signing_key
        if key is None:
            raise ConfigurationError(self._missing_key)
        now = int(self._clock())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": audience,
            "jti": secrets.token_urlsafe(16),
            "iat": now,
            "exp": now + ASSERTION_LIFETIME,
        }
        headers = {"kid": key.kid} if key.kid else None
        return pyjwt.encode(claims, key.key, algorithm=key.alg, headers=headers)
