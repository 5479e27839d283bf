"""Provider profiles of ``TestIssuer``: each provider's metadata paths and token shapes.

A profile says where a provider serves its metadata and keys below the base URL its console
shows, what its issuer identifier looks like, and how its access and ID tokens are shaped
(header, claims, audiences, where scopes and roles live), as each provider documents them:

- Auth0: https://auth0.com/docs/secure/tokens/access-tokens/access-token-profiles and
  https://auth0.com/docs/secure/tokens/id-tokens/id-token-structure
- Microsoft Entra ID: https://learn.microsoft.com/en-us/entra/identity-platform/access-token-claims-reference
  and https://learn.microsoft.com/en-us/entra/identity-platform/id-token-claims-reference
- Okta: https://developer.okta.com/docs/guides/validate-access-tokens/ and
  https://developer.okta.com/docs/reference/api/oidc/#token-claims
- Keycloak: https://www.keycloak.org/docs/latest/server_admin/#_oidc (token claims, audience)
- Amazon Cognito: https://docs.aws.amazon.com/cognito/latest/developerguide/amazon-cognito-user-pools-using-the-access-token.html
  and https://docs.aws.amazon.com/cognito/latest/developerguide/amazon-cognito-user-pools-using-the-id-token.html
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from oauthguard._jose.b64 import b64url_encode
from oauthguard.testing._keys import override_members, public_jwk, sign_jws

Claims = dict[str, Any]
Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Grant:
    """What one minted token says: who, for which client and audience, with what."""

    subject: str
    client_id: str
    scopes: tuple[str, ...]
    roles: tuple[str, ...]
    audience: str | list[str] | None
    now: int
    expires_in: float
    options: Mapping[str, Any] = field(default_factory=dict)

    def times(self) -> Claims:
        return {"iat": self.now, "exp": int(self.now + self.expires_in)}


class Profile:
    """One provider's issuer: its identifier, metadata and key paths, token shapes.

    The defaults of each provider's profile (client ids, realm, tenant, pool) are examples of
    the right shape; give your own to match the preset you test, e.g.
    ``KeycloakProfile(realm="demo", client_id="orders-api")`` beside
    ``providers.keycloak(url, realm="demo", client_id="orders-api")``.
    """

    name: ClassVar[str]
    #: Whether its JWKS also lists a key for encryption (``use: "enc"``).
    encryption_key: ClassVar[bool] = False
    #: Options ``access_token(...)`` / ``id_token(...)`` take for this provider.
    options: ClassVar[frozenset[str]] = frozenset()

    def issuer(self, base: str) -> str:
        raise NotImplementedError

    def metadata_paths(self) -> tuple[str, ...]:
        """Starlette paths of the metadata documents (they may hold path parameters)."""
        raise NotImplementedError

    def jwks_paths(self) -> tuple[str, ...]:
        """Starlette paths of the JWKS; the first is the one the metadata names."""
        raise NotImplementedError

    def issuer_at(self, base: str, params: Mapping[str, str]) -> str:
        """The ``issuer`` of the metadata document at a path with these parameters."""
        return self.issuer(base)

    def default_audience(self) -> str | list[str]:
        raise NotImplementedError

    def access(self, base: str, grant: Grant) -> tuple[Claims, Claims]:
        """The header (without ``kid``) and claims of an access token."""
        raise NotImplementedError

    def id(self, base: str, grant: Grant) -> tuple[Claims, Claims]:
        """The header (without ``kid``) and claims of an ID token."""
        raise NotImplementedError


def check_options(profile: Profile, options: Mapping[str, Any]) -> None:
    unknown = sorted(set(options) - profile.options)
    if unknown:
        allowed = ", ".join(sorted(profile.options)) or "none"
        raise TypeError(f"the {profile.name} profile takes no option {unknown[0]!r} ({allowed})")


def jti() -> str:
    return uuid.uuid4().hex


def client_of(profile: Profile) -> str:
    """The client a profile's tokens name by default: for Entra and Keycloak, where the API
    is a client (an app registration) of its own, the app that calls it; elsewhere the app
    client (the API is named by its audience)."""
    caller = getattr(profile, "caller_id", None)
    client = caller if isinstance(caller, str) else getattr(profile, "client_id", None)
    assert isinstance(client, str)
    return client


def graph_header_for_signing(header: Mapping[str, Any]) -> Claims:
    """Microsoft signs Graph tokens over a header whose ``nonce`` is its SHA-256, so the
    token as sent does not verify as a plain JWS (and is not meant to, outside Graph)."""
    nonce = str(header["nonce"])
    return {**header, "nonce": hashlib.sha256(nonce.encode()).hexdigest()}


def with_defaults(
    profile: Profile,
    kind: str,
    *,
    subject: str,
    client_id: str | None,
    scopes: Sequence[str],
    roles: Sequence[str],
    audience: str | list[str] | None,
    now: int,
    expires_in: float,
    options: Mapping[str, Any],
) -> Grant:
    check_options(profile, options)
    if audience is None and kind == "access":
        audience = profile.default_audience()
    return Grant(
        subject=subject,
        client_id=client_id or client_of(profile),
        scopes=tuple(scopes),
        roles=tuple(roles),
        audience=audience or None,
        now=now,
        expires_in=expires_in,
        options=dict(options),
    )


def mint(
    profile: Profile,
    base: str,
    kind: str,
    grant: Grant,
    kid: str,
    key: Any,
    claims: Mapping[str, Any] | None,
    headers: Mapping[str, Any] | None,
) -> str:
    """A signed token of ``kind`` (``"access"`` or ``"id"``) shaped like the profile's
    provider's; ``claims``/``headers`` override or, with None, remove."""
    header, payload = (profile.access if kind == "access" else profile.id)(base, grant)
    header["kid"] = kid
    override_members(payload, claims)
    override_members(header, headers)
    if not isinstance(header.get("nonce"), str):
        return sign_jws(header, payload, key, "RS256")
    signed = sign_jws(graph_header_for_signing(header), payload, key, "RS256")
    head = b64url_encode(json.dumps(header, separators=(",", ":")).encode())
    return head + signed[signed.index(".") :]


def profile_routes(profile: Profile, metadata: Endpoint, jwks: Endpoint) -> list[Route]:
    """The metadata and JWKS routes of a provider-shaped issuer, at the provider's paths."""
    return [Route(path, metadata) for path in profile.metadata_paths()] + [
        Route(path, jwks) for path in profile.jwks_paths()
    ]


def encryption_jwk(key: Any, kid: str) -> dict[str, Any]:
    """An RSA key for encryption as Keycloak lists it in its JWKS beside the signing keys
    (``use: "enc"``, RSA-OAEP): it must never verify a signature (RFC 7517 §4.2)."""
    jwk = public_jwk(key, kid, "RSA-OAEP")
    jwk["use"] = "enc"
    return jwk
