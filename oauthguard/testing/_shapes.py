"""The five provider shapes of ``TestIssuer`` profiles, each as its provider documents it
(the pages are listed in ``oauthguard.testing._profile``)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from oauthguard.testing._profile import Claims, Grant, Profile, jti


@dataclass(frozen=True)
class Auth0Profile(Profile):
    """Auth0: issuer ``{base}/``; ``permissions`` beside ``scope``; the RFC 9068 dialect
    with ``rfc9068=True``; roles (if any) in a namespaced claim an Action adds."""

    audience: str = "https://api.example.com"
    client_id: str = "AuTh0CliEntId0123456789abcdefgh"
    rfc9068: bool = False
    roles_claim: str = "https://oauthguard.test/roles"
    name: ClassVar[str] = "auth0"
    options: ClassVar[frozenset[str]] = frozenset({"permissions"})

    def issuer(self, base: str) -> str:
        return base + "/"  # Auth0's issuer ends with a slash

    def metadata_paths(self) -> tuple[str, ...]:
        return ("/.well-known/openid-configuration",)  # no RFC 8414 document

    def jwks_paths(self) -> tuple[str, ...]:
        return ("/.well-known/jwks.json",)

    def default_audience(self) -> str | list[str]:
        return self.audience

    def access(self, base: str, grant: Grant) -> tuple[Claims, Claims]:
        audience = grant.audience
        if "openid" in grant.scopes and isinstance(audience, str):
            audience = [audience, base + "/userinfo"]
        claims: Claims = {"iss": self.issuer(base), "sub": grant.subject, "aud": audience}
        claims["client_id" if self.rfc9068 else "azp"] = grant.client_id
        claims.update(grant.times())
        if self.rfc9068:
            claims["jti"] = jti()
        claims["scope"] = " ".join(grant.scopes)
        permissions = grant.options.get("permissions")
        if permissions is not None:  # "Add Permissions in the Access Token" (RBAC)
            claims["permissions"] = list(permissions)
        if grant.roles:
            claims[self.roles_claim] = list(grant.roles)
        return {"alg": "RS256", "typ": "at+jwt" if self.rfc9068 else "JWT"}, claims

    def id(self, base: str, grant: Grant) -> tuple[Claims, Claims]:
        claims: Claims = {
            "iss": self.issuer(base),
            "sub": grant.subject,
            "aud": grant.audience or grant.client_id,
            **grant.times(),
            "sid": jti(),
            "nonce": jti(),
            "name": "Test User",
            "email": "user@example.com",
        }
        return {"alg": "RS256", "typ": "JWT"}, claims


@dataclass(frozen=True)
class EntraProfile(Profile):
    """Entra ID: v2 issuer ``{base}/{tenant}/v2.0``; v1 tokens with ``version=1`` (issuer
    ``{base}/{tenant}/`` standing in for ``https://sts.windows.net/{tenant}/``); another
    tenant with ``tenant=``; a Microsoft Graph token with ``graph=True``. ``client_id`` is
    the API's app registration, ``caller_id`` the app that calls it."""

    tenant: str = "9f4c1a52-8d3e-4b7a-a1c6-2e5f7d9b0c31"
    client_id: str = "6e74172b-be56-4843-9ff4-e66a39bb12e3"
    caller_id: str = "75dbe77f-10a3-4e59-85fd-8c127544f17c"
    name: ClassVar[str] = "entra"
    options: ClassVar[frozenset[str]] = frozenset({"version", "tenant", "graph"})
    GRAPH: ClassVar[str] = "00000003-0000-0000-c000-000000000000"  # Microsoft Graph's app id

    def issuer(self, base: str) -> str:
        return f"{base}/{self.tenant}/v2.0"

    def metadata_paths(self) -> tuple[str, ...]:
        return ("/{tenant}/v2.0/.well-known/openid-configuration",)

    def jwks_paths(self) -> tuple[str, ...]:
        return ("/{tenant}/discovery/v2.0/keys", "/{tenant}/discovery/keys")

    def issuer_at(self, base: str, params: Mapping[str, str]) -> str:
        tenant = params.get("tenant", self.tenant)
        if tenant in ("common", "organizations", "consumers"):
            tenant = "{tenantid}"  # the multi-tenant document names no tenant
        return f"{base}/{tenant}/v2.0"

    def default_audience(self) -> str | list[str]:
        return self.client_id

    def access(self, base: str, grant: Grant) -> tuple[Claims, Claims]:
        tenant = str(grant.options.get("tenant", self.tenant))
        version = grant.options.get("version", 2)
        claims: Claims = {"aud": grant.audience, **grant.times(), "nbf": grant.now}
        header: Claims = {"typ": "JWT", "alg": "RS256"}
        if version == 1:
            claims.update(iss=f"{base}/{tenant}/", appid=grant.client_id, appidacr="1", ver="1.0")
            claims["aud"] = (
                f"api://{self.client_id}" if grant.audience == self.client_id else grant.audience
            )
        else:
            claims.update(iss=f"{base}/{tenant}/v2.0", azp=grant.client_id, azpacr="1", ver="2.0")
        claims.update(
            aio=jti(), oid=str(uuid.uuid4()), sub=grant.subject, tid=tenant, uti=jti(), rh="0."
        )
        if grant.scopes:  # delegated (user) tokens only
            claims["scp"] = " ".join(grant.scopes)
        if grant.roles:
            claims["roles"] = list(grant.roles)
        if grant.options.get("graph"):
            header["nonce"] = jti()  # Graph tokens: a nonce in the header, aud Graph
            claims.update(aud=self.GRAPH, iss=f"{base}/{tenant}/", appid=grant.client_id)
            claims.update(ver="1.0", scp="User.Read openid profile")
            claims.pop("azp", None)
        return header, claims

    def id(self, base: str, grant: Grant) -> tuple[Claims, Claims]:
        tenant = str(grant.options.get("tenant", self.tenant))
        claims: Claims = {
            "aud": grant.audience or grant.client_id,
            "iss": f"{base}/{tenant}/v2.0",
            **grant.times(),
            "nbf": grant.now,
            "aio": jti(),
            "name": "Test User",
            "nonce": jti(),
            "oid": str(uuid.uuid4()),
            "preferred_username": "user@example.com",
            "rh": "0.",
            "sub": grant.subject,
            "tid": tenant,
            "uti": jti(),
            "ver": "2.0",
        }
        return {"typ": "JWT", "alg": "RS256"}, claims


@dataclass(frozen=True)
class OktaProfile(Profile):
    """Okta custom authorization server ``{base}/oauth2/{server}``; ``scp`` an array;
    ``cid`` the client; roles as the ``groups`` claim an administrator adds."""

    server: str = "default"
    audience: str = "api://default"
    client_id: str = "0oa1b2c3d4e5f6g7h8i9"
    name: ClassVar[str] = "okta"

    def issuer(self, base: str) -> str:
        return f"{base}/oauth2/{self.server}"

    def metadata_paths(self) -> tuple[str, ...]:
        prefix = f"/oauth2/{self.server}"
        return (
            prefix + "/.well-known/oauth-authorization-server",
            prefix + "/.well-known/openid-configuration",
            "/.well-known/oauth-authorization-server" + prefix,  # the RFC 8414 form
        )

    def jwks_paths(self) -> tuple[str, ...]:
        return (f"/oauth2/{self.server}/v1/keys",)

    def default_audience(self) -> str | list[str]:
        return self.audience

    def access(self, base: str, grant: Grant) -> tuple[Claims, Claims]:
        claims: Claims = {
            "ver": 1,
            "jti": "AT." + jti(),
            "iss": self.issuer(base),
            "aud": grant.audience,
            "sub": grant.subject,
            **grant.times(),
            "cid": grant.client_id,
            "uid": "00u" + jti()[:17],
            "scp": list(grant.scopes),
            "auth_time": grant.now,
        }
        if grant.roles:
            claims["groups"] = list(grant.roles)  # the "groups" claim an admin adds
        return {"kid": "", "alg": "RS256"}, claims

    def id(self, base: str, grant: Grant) -> tuple[Claims, Claims]:
        claims: Claims = {
            "sub": "00u" + jti()[:17],
            "name": "Test User",
            "email": "user@example.com",
            "ver": 1,
            "iss": self.issuer(base),
            "aud": grant.audience or grant.client_id,
            **grant.times(),
            "jti": "ID." + jti(),
            "amr": ["pwd"],
            "idp": "00o" + jti()[:17],
            "preferred_username": "user@example.com",
            "auth_time": grant.now,
            "at_hash": jti()[:22],
        }
        return {"kid": "", "alg": "RS256"}, claims


@dataclass(frozen=True)
class KeycloakProfile(Profile):
    """Keycloak realm ``{base}/realms/{realm}``; realm roles (``roles=``) and the API
    client's roles (``client_roles=``); audience ``[client_id, "account"]`` (the API added by
    an audience mapper); ``caller_id`` the client that asked (``azp``)."""

    realm: str = "test"
    client_id: str = "orders-api"
    caller_id: str = "web-app"
    name: ClassVar[str] = "keycloak"
    encryption_key: ClassVar[bool] = True
    options: ClassVar[frozenset[str]] = frozenset({"client_roles"})

    def issuer(self, base: str) -> str:
        return f"{base}/realms/{self.realm}"

    def metadata_paths(self) -> tuple[str, ...]:
        return (f"/realms/{self.realm}/.well-known/openid-configuration",)

    def jwks_paths(self) -> tuple[str, ...]:
        return (f"/realms/{self.realm}/protocol/openid-connect/certs",)

    def default_audience(self) -> str | list[str]:
        return [self.client_id, "account"]

    def _common(self, base: str, grant: Grant, typ: str) -> Claims:
        return {
            **grant.times(),
            "auth_time": grant.now,
            "jti": str(uuid.uuid4()),
            "iss": self.issuer(base),
            "aud": grant.audience,
            "sub": grant.subject,
            "typ": typ,  # Keycloak's own claim: Bearer, ID or Refresh
            "azp": grant.client_id,
            "sid": str(uuid.uuid4()),
            "email_verified": True,
            "preferred_username": "user",
        }

    def access(self, base: str, grant: Grant) -> tuple[Claims, Claims]:
        claims = self._common(base, grant, "Bearer")
        claims["acr"] = "1"
        claims["realm_access"] = {"roles": ["offline_access", "uma_authorization", *grant.roles]}
        access: Claims = {
            "account": {"roles": ["manage-account", "manage-account-links", "view-profile"]}
        }
        client_roles = grant.options.get("client_roles")
        if client_roles:
            access[self.client_id] = {"roles": list(client_roles)}
        claims["resource_access"] = access
        claims["scope"] = " ".join(grant.scopes)
        return {"alg": "RS256", "typ": "JWT"}, claims

    def id(self, base: str, grant: Grant) -> tuple[Claims, Claims]:
        claims = self._common(base, grant, "ID")
        claims["aud"] = grant.audience or claims["azp"]
        claims.update(nonce=jti(), at_hash=jti()[:22], acr="1")
        return {"alg": "RS256", "typ": "JWT"}, claims


@dataclass(frozen=True)
class CognitoProfile(Profile):
    """Cognito user pool ``{base}/{pool}``; no ``aud`` in access tokens; ``token_use``;
    groups as ``cognito:groups``."""

    user_pool_id: str = "us-east-1_TestPool1"
    client_id: str = "1example23456789abcdefghij"
    name: ClassVar[str] = "cognito"

    def issuer(self, base: str) -> str:
        return f"{base}/{self.user_pool_id}"

    def metadata_paths(self) -> tuple[str, ...]:
        return (f"/{self.user_pool_id}/.well-known/openid-configuration",)

    def jwks_paths(self) -> tuple[str, ...]:
        return (f"/{self.user_pool_id}/.well-known/jwks.json",)

    def default_audience(self) -> str | list[str]:
        return []  # Cognito access tokens have no aud

    def access(self, base: str, grant: Grant) -> tuple[Claims, Claims]:
        claims: Claims = {"sub": grant.subject}
        if grant.roles:
            claims["cognito:groups"] = list(grant.roles)
        claims.update(
            iss=self.issuer(base),
            version=2,
            client_id=grant.client_id,
            origin_jti=str(uuid.uuid4()),
            event_id=str(uuid.uuid4()),
            token_use="access",
            scope=" ".join(grant.scopes),
            auth_time=grant.now,
            **grant.times(),
            jti=str(uuid.uuid4()),
            username=grant.subject,
        )
        if grant.audience:  # only with a resource indicator (managed login)
            claims["aud"] = grant.audience
        return {"kid": "", "alg": "RS256"}, claims

    def id(self, base: str, grant: Grant) -> tuple[Claims, Claims]:
        claims: Claims = {"sub": grant.subject}
        if grant.roles:
            claims["cognito:groups"] = list(grant.roles)
        claims.update(
            email_verified=True,
            iss=self.issuer(base),
            **{"cognito:username": grant.subject},
            origin_jti=str(uuid.uuid4()),
            aud=grant.audience or grant.client_id,
            event_id=str(uuid.uuid4()),
            token_use="id",
            auth_time=grant.now,
            **grant.times(),
            jti=str(uuid.uuid4()),
            email="user@example.com",
        )
        return {"kid": "", "alg": "RS256"}, claims
