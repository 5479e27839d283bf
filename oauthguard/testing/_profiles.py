"""``TestIssuer``'s provider profiles: chosen by name, and the tokens they mint."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from oauthguard.testing._keys import KEY_FACTORIES
from oauthguard.testing._profile import Profile, encryption_jwk, mint, with_defaults
from oauthguard.testing._shapes import (
    Auth0Profile,
    CognitoProfile,
    EntraProfile,
    KeycloakProfile,
    OktaProfile,
)


def profile_of(value: str | Profile) -> Profile:
    """``TestIssuer(profile=...)``: a provider's name or a ``Profile``."""
    if isinstance(value, Profile):
        return value
    makers: dict[str, type[Profile]] = {
        "auth0": Auth0Profile,
        "entra": EntraProfile,
        "okta": OktaProfile,
        "keycloak": KeycloakProfile,
        "cognito": CognitoProfile,
    }
    if value not in makers:
        raise ValueError(f"profile must be one of {', '.join(makers)} or a Profile, got {value!r}")
    return makers[value]()


class ProviderTokens:
    """The provider-shaped tokens of a ``TestIssuer`` with a profile."""

    profile: Profile | None
    base_url: str
    subject: str
    keys: dict[str, tuple[str, Any]]
    default_kid: dict[str, str]
    extra_jwks: list[dict[str, Any]]
    key_pool: Any
    clock: Callable[[], float]

    def access_token(
        self,
        *,
        subject: str | None = None,
        scopes: Sequence[str] = (),
        roles: Sequence[str] = (),
        audience: str | list[str] | None = None,
        client_id: str | None = None,
        expires_in: float = 300,
        claims: Mapping[str, Any] | None = None,
        headers: Mapping[str, Any] | None = None,
        now: float | None = None,
        **options: Any,
    ) -> str:
        """An access token shaped like the profile's provider's (RS256): ``scopes`` and
        ``roles`` where that provider puts them, ``audience`` its default unless given.
        ``options`` are the provider's own (Auth0 ``permissions``; Entra ``version``,
        ``tenant``, ``graph``; Keycloak ``client_roles``); ``claims``/``headers`` override
        or, with None, remove."""
        return self._mint("access", subject, scopes, roles, audience, client_id, expires_in,
                          claims, headers, now, options)  # fmt: skip

    def id_token(
        self,
        *,
        subject: str | None = None,
        audience: str | list[str] | None = None,
        client_id: str | None = None,
        roles: Sequence[str] = (),
        expires_in: float = 300,
        claims: Mapping[str, Any] | None = None,
        headers: Mapping[str, Any] | None = None,
        now: float | None = None,
        **options: Any,
    ) -> str:
        """An OpenID Connect ID token shaped like the profile's provider's (its ``aud`` is
        the client that signed the user in): what a client must never send to an API."""
        return self._mint("id", subject, (), roles, audience, client_id, expires_in,
                          claims, headers, now, options)  # fmt: skip

    def _mint(
        self,
        kind: str,
        subject: str | None,
        scopes: Sequence[str],
        roles: Sequence[str],
        audience: str | list[str] | None,
        client_id: str | None,
        expires_in: float,
        claims: Mapping[str, Any] | None,
        headers: Mapping[str, Any] | None,
        now: float | None,
        options: Mapping[str, Any],
    ) -> str:
        if self.profile is None:
            raise ValueError("access_token() and id_token() need TestIssuer(profile=...)")
        grant = with_defaults(
            self.profile,
            kind,
            subject=subject or self.subject,
            client_id=client_id,
            scopes=scopes,
            roles=roles,
            audience=audience,
            now=int(self.clock() if now is None else now),
            expires_in=expires_in,
            options=options,
        )
        kid = self.default_kid["RS256"]
        return mint(
            self.profile, self.base_url, kind, grant, kid, self.keys[kid][1], claims, headers
        )

    def add_encryption_key(self) -> tuple[str, Any] | None:
        """Keycloak lists an RSA-OAEP key for encryption in its JWKS: so does its profile."""
        if self.profile is None or not self.profile.encryption_key:
            return None
        key = self.key_pool.key("RS256") if self.key_pool is not None else None
        key = key or KEY_FACTORIES["RS256"]()
        kid = "enc-" + uuid.uuid4().hex[:8]
        self.extra_jwks.append(encryption_jwk(key, kid))
        return kid, key
