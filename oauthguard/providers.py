"""Presets for identity providers: an ``Issuer`` set up the way each one issues tokens.

>>> authorization_servers = [
...     providers.auth0("example.us.auth0.com", audience="https://api.example.com"),
...     providers.entra("6e74172b-be56-4843-9ff4-e66a39bb12e3", tenant="9f4c1a52-..."),
...     providers.okta("example.okta.com", server="default", audience="api://default"),
...     providers.keycloak("https://kc.example.com", realm="demo", client_id="orders-api"),
...     providers.cognito("eu-west-1_AbCdEf123", client_ids=["1example23456789"]),
... ]

Each takes the provider's base as its console shows it (a domain, a URL, a pool id) or, in
its place, a full ``http://127.0.0.1:PORT/...`` URL, so tests can stand in for the provider
(``oauthguard.testing.TestIssuer(profile=...)``). Each refuses its provider's ID tokens, and
other tokens the provider issues for something else, with a description that says so, and
logs the fix for the provider's usual setup mistakes. The guides are in ``docs/providers/``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable
from typing import overload
from urllib.parse import urlsplit

import oauthguard._provider_checks as checks
from oauthguard._core.issuer import Issuer
from oauthguard._http.urls import INSECURE_HTTP, insecure_http, is_loopback_host
from oauthguard._wire.errors import ConfigurationError

__all__ = ["auth0", "cognito", "entra", "keycloak", "okta"]

_HOST = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*(:\d{1,5})?")
_GUID = re.compile(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_POOL = re.compile(r"([a-z]{2}(-[a-z]+)+-\d)_[A-Za-z0-9]+")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
Tenants = Iterable[str] | Callable[[str], bool]


def _base(
    argument: str, value: object, *, path: bool = False, allow_http: bool | None = None
) -> str:
    """A provider's base as an origin (``https://host[:port]``, a path only where the
    provider has one), from a bare host name or a URL; http only on loopback (a stand-in)
    unless ``allow_http`` (None: the preset has no such opt-in, its provider is https only)
    or ``OAUTHGUARD_INSECURE_HTTP=1``."""
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{argument} must be a host name or URL, got {value!r}")
    url = value if "://" in value else "https://" + value
    parts = urlsplit(url)
    host_ok = bool(parts.hostname) and (
        is_loopback_host(parts.hostname) or _HOST.fullmatch(parts.netloc) is not None
    )
    if not host_ok or parts.query or parts.fragment or "@" in parts.netloc:
        raise ConfigurationError(
            f"{argument}={value!r} is not a host name or a URL without query or fragment"
        )
    opted_in = insecure_http() if allow_http is None else allow_http or insecure_http()
    if parts.scheme == "http" and not (is_loopback_host(parts.hostname) or opted_in):
        fix = (
            "the provider serves https only (plain http is for a stand-in on loopback)"
            if allow_http is None
            else "use https, or opt in for a development container with allow_http=True "
            f"(or {INSECURE_HTTP}=1)"
        )
        raise ConfigurationError(f"{argument}={value!r} is plain http: {fix}")
    if parts.scheme not in ("http", "https"):
        raise ConfigurationError(f"{argument}={value!r} must be an https URL")
    base_path = parts.path.rstrip("/")
    if base_path and not path:
        raise ConfigurationError(
            f"{argument}={value!r} has a path: give only the domain as the console shows it"
            " (the preset adds the provider's path)"
        )
    return f"{parts.scheme}://{parts.netloc}{base_path}"


def _text(argument: str, value: object, pattern: re.Pattern[str], what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ConfigurationError(f"{argument} must be {what}, got {value!r}")
    return value


def _optional_text(argument: str, value: object) -> str | None:
    if value is not None and not (isinstance(value, str) and value.strip() == value != ""):
        raise ConfigurationError(f"{argument} must be a non-empty string or None, got {value!r}")
    return value


def auth0(domain: str, audience: str | None = None, *, roles_claim: str | None = None) -> Issuer:
    """Auth0: ``domain`` is the tenant's (``example.us.auth0.com``) or a custom domain
    (``login.example.com``; list both if clients use both: each is its own issuer).

    The issuer is ``https://{domain}/`` with its trailing slash; metadata comes from OpenID
    Connect discovery only; scopes are ``scope`` united with ``permissions`` (RBAC with "Add
    Permissions in the Access Token"); ``audience`` is the API identifier, accepted beside
    the resource's own; ``roles_claim`` a namespaced claim an Action adds
    (``https://example.com/roles``). Tokens of the Auth0 and RFC 9068 dialects
    (``typ`` ``JWT`` or ``at+jwt``) are accepted; ID tokens refused.
    """
    base = _base("auth0(domain=...)", domain)
    api = _optional_text("auth0(audience=...)", audience)
    roles = _optional_text("auth0(roles_claim=...)", roles_claim)
    if roles is not None and "://" not in roles:
        raise ConfigurationError(
            f"auth0(roles_claim={roles!r}): Auth0 only adds custom claims under a namespace, "
            "a URL such as 'https://example.com/roles'"
        )
    return Issuer(
        base + "/",
        audiences=(api,) if api else (),
        scopes_claims=("scope", "permissions"),
        roles_claims=(roles,) if roles else (),
        discovery="oidc",
        checks=(checks.auth0_access_token,),
        explain=checks.auth0_explain(api),
    )


# Where each cloud's v1.0 tokens come from (their iss): https://sts.windows.net/{tid}/ in the
# global cloud, the 21Vianet cloud's own STS in China.
_V1_ISSUERS = {
    "login.microsoftonline.com": "https://sts.windows.net",
    "login.microsoftonline.us": "https://sts.windows.net",
    "login.chinacloudapi.cn": "https://sts.chinacloudapi.cn",
    "login.partner.microsoftonline.cn": "https://sts.chinacloudapi.cn",
}


@overload
def entra(
    client_id: str,
    *,
    tenant: str | None = None,
    tenants: Tenants | None = None,
    authority: str = "https://login.microsoftonline.com",
    versions: tuple[int] = (2,),
    app_id_uri: str | None = None,
) -> Issuer: ...


@overload
def entra(
    client_id: str,
    *,
    tenant: str | None = None,
    tenants: Tenants | None = None,
    authority: str = "https://login.microsoftonline.com",
    versions: tuple[int, int],
    app_id_uri: str | None = None,
) -> tuple[Issuer, Issuer]: ...


def entra(
    client_id: str,
    *,
    tenant: str | None = None,
    tenants: Tenants | None = None,
    authority: str = "https://login.microsoftonline.com",
    versions: tuple[int, ...] = (2,),
    app_id_uri: str | None = None,
) -> Issuer | tuple[Issuer, Issuer]:
    """Microsoft Entra ID: ``client_id`` is the API's Application (client) ID; ``tenant`` its
    Directory (tenant) ID, or ``tenants`` the tenant IDs (or a function ``tid -> bool``) a
    multi-tenant API accepts.

    v2.0 tokens (``"accessTokenAcceptedVersion": 2``) have the issuer
    ``{authority}/{tid}/v2.0``; ``versions=(1, 2)`` also accepts v1.0 tokens
    (``https://sts.windows.net/{tid}/``) and returns both issuers: pass them as
    ``authorization_servers=[*providers.entra(...), ...]``. ``aud`` is the client ID or the
    App ID URI (``app_id_uri``, default ``api://{client_id}``); scopes are ``scp``, roles
    ``roles`` (app roles). ``authority`` selects a national cloud
    (``https://login.microsoftonline.us``, ``https://login.chinacloudapi.cn``). Tokens for
    Microsoft Graph (a ``nonce`` in their header) and ID tokens are refused.
    """
    api = _text("entra(client_id=...)", client_id, _GUID, "the Application (client) ID, a GUID")
    origin = _base("entra(authority=...)", authority)
    if (tenant is None) == (tenants is None):
        raise ConfigurationError(
            "entra() needs tenant='<Directory (tenant) ID>' for a single-tenant API, or "
            "tenants=[...] (or a function tid -> bool) for a multi-tenant one: not both"
        )
    if tenant is not None:
        tenant = _text("entra(tenant=...)", tenant, _GUID, _TENANT_FIX)
    elif not callable(tenants):
        tenants = tuple(_text("entra(tenants=[...])", t, _GUID, _TENANT_FIX) for t in tenants or ())
        if not tenants:
            raise ConfigurationError("entra(tenants=[...]) needs at least one tenant ID")
    if not isinstance(versions, tuple) or not versions or not set(versions) <= {1, 2}:
        raise ConfigurationError(
            f"entra(versions=...) must be (2,), (1,) or (1, 2), got {versions!r}"
        )
    uri = _optional_text("entra(app_id_uri=...)", app_id_uri) or f"api://{api}"
    place = tenant or "{tenant}"
    keys = tenant or "common"  # one JWKS serves every tenant (Microsoft's common keys)
    v2 = Issuer(
        f"{origin}/{place}/v2.0",
        jwks_uri=None if tenant else f"{origin}/{keys}/discovery/v2.0/keys",
        audiences=(api, uri),
        tenants=None if tenant else tenants,
        scopes_claims=("scp",),
        roles_claims=("roles",),
        discovery="oidc",
        checks=(checks.entra_access_token, checks.entra_tenant),
        explain=checks.entra_explain(tuple(sorted(set(versions))), api),
        token_exchange="entra_obo",  # Entra exchanges tokens on-behalf-of, not by RFC 8693
    )
    made = [v2] if 2 in versions else []
    if 1 in versions:  # the same API and rules; v1.0's own issuer and keys
        v1_url, v1_keys = f"{_v1_issuer(origin)}/{place}/", f"{origin}/{keys}/discovery/keys"
        made.append(dataclasses.replace(v2, url=v1_url, jwks_uri=v1_keys))
    return made[0] if len(made) == 1 else (made[0], made[1])


_TENANT_FIX = (
    "the Directory (tenant) ID, a GUID (tokens name the tenant by its ID, never by a domain, "
    "'common' or 'organizations'; a multi-tenant API lists tenants=[...])"
)


def _v1_issuer(origin: str) -> str:
    host = urlsplit(origin).hostname or ""
    if is_loopback_host(host):
        return origin  # a stand-in serves its v1.0 tokens as {authority}/{tid}/
    if host not in _V1_ISSUERS:
        raise ConfigurationError(
            f"entra(authority={origin!r}, versions=(1, ...)): the v1.0 issuer of this cloud "
            f"is not known (known: {', '.join(sorted(_V1_ISSUERS))}); accept v2.0 tokens only "
            '("accessTokenAcceptedVersion": 2)'
        )
    return _V1_ISSUERS[host]


def okta(domain: str, server: str | None = "default", audience: str = "api://default") -> Issuer:
    """Okta: ``domain`` is the org's (``example.okta.com``, or a custom URL domain);
    ``server`` the custom authorization server's ID (``default``, or ``aus...``) and
    ``audience`` its Audience setting.

    The issuer is ``https://{domain}/oauth2/{server}``; scopes are the ``scp`` array, the
    client ``cid``, roles the ``groups`` claim when an administrator adds one. The org
    authorization server (``server=None``) is refused here: its access tokens are meant for
    Okta's own APIs and cannot be validated by yours.
    """
    base = _base("okta(domain=...)", domain)
    if server is None or server == "":
        raise ConfigurationError(
            "okta(server=None): the org authorization server issues access tokens for Okta's "
            "own APIs only; they are not meant to be validated by your API. Use a custom "
            "authorization server (API Access Management): server='default' or its ID"
        )
    server = _text(
        "okta(server=...)",
        server,
        re.compile(r"[A-Za-z0-9]{1,64}"),
        "an ID like 'default' or 'aus...'",
    )
    api = _optional_text("okta(audience=...)", audience)
    if api is None:
        raise ConfigurationError("okta(audience=...) must be the authorization server's Audience")
    return Issuer(
        f"{base}/oauth2/{server}",
        audiences=(api,),
        scopes_claims=("scp",),
        roles_claims=("groups",),
        discovery="oauth",
        checks=(checks.okta_access_token,),
        explain=checks.okta_explain(api),
    )


def keycloak(
    url: str,
    realm: str,
    client_id: str | None = None,
    internal_url: str | None = None,
    *,
    allow_http: bool = False,
    clients: str | Iterable[str] = (),
) -> Issuer:
    """Keycloak: ``url`` is the server's public base (``https://kc.example.com``, with
    ``/auth`` on servers older than 17), ``realm`` the realm, ``client_id`` the API's client.

    The issuer is ``{url}/realms/{realm}``; ``aud`` must name ``client_id`` (Keycloak puts
    only ``account`` there unless an audience mapper adds the API); roles are the realm's
    (``realm_access.roles``) and the API client's (``resource_access.{client_id}.roles``).
    ``internal_url`` is the base the server reaches Keycloak at inside the deployment
    (``http://keycloak:8080`` in docker compose) when tokens name a public ``url``;
    ``allow_http=True`` opts in to plain http on a non-loopback host (a dev container);
    ``clients`` limits the clients that may call (the token's ``azp``).
    Keys listed for encryption (``use: "enc"``) never verify signatures.
    """
    base = _base("keycloak(url=...)", url, path=True, allow_http=allow_http)
    realm = _text("keycloak(realm=...)", realm, _NAME, "the realm's name")
    api = _optional_text("keycloak(client_id=...)", client_id)
    if api is not None and "." in api:
        raise ConfigurationError(
            f"keycloak(client_id={api!r}): a client ID with a dot cannot name its roles "
            "claim as a path (resource_access.<client>.roles); give the client an ID without"
        )
    internal = None
    if internal_url is not None:
        inner = _base("keycloak(internal_url=...)", internal_url, path=True, allow_http=allow_http)
        internal = f"{inner}/realms/{realm}"
    roles = ("realm_access.roles",) + ((f"resource_access.{api}.roles",) if api else ())
    return Issuer(
        f"{base}/realms/{realm}",
        internal_url=internal,
        audiences=(api,) if api else (),
        clients=(clients,) if isinstance(clients, str) else tuple(clients),
        scopes_claims=("scope",),
        roles_claims=roles,
        allow_http=allow_http,
        discovery="oidc",
        checks=(checks.keycloak_access_token,),
        explain=checks.keycloak_explain(api),
    )


def cognito(
    user_pool_id: str, client_ids: str | Iterable[str], region: str | None = None
) -> Issuer:
    """Amazon Cognito: ``user_pool_id`` is the pool's ID (``eu-west-1_AbCdEf123``; its region
    is taken from it unless ``region`` is given), ``client_ids`` the app clients whose access
    tokens the API takes.

    The issuer is ``https://cognito-idp.{region}.amazonaws.com/{pool}``. Access tokens have
    no ``aud`` (one carries one only when the client sent a resource indicator; then it must
    be this resource): ``token_use`` must be ``access`` and ``client_id`` one of
    ``client_ids``; scopes are ``scope``, roles the user's groups (``cognito:groups``).
    """
    if isinstance(user_pool_id, str) and "://" in user_pool_id:  # a stand-in's issuer URL
        base, _, pool = _base("cognito(user_pool_id=...)", user_pool_id, path=True).rpartition("/")
    else:
        base, pool = "", user_pool_id
    pool = _text(
        "cognito(user_pool_id=...)", pool, _POOL, "a user pool ID like 'eu-west-1_AbCdEf123'"
    )
    prefix = pool.partition("_")[0]
    if region is not None and region != prefix:
        raise ConfigurationError(
            f"cognito(region={region!r}) differs from the region of the pool ID {pool!r}"
        )
    clients = (client_ids,) if isinstance(client_ids, str) else tuple(client_ids)
    if not clients or not all(isinstance(c, str) and c for c in clients):
        raise ConfigurationError(
            "cognito(client_ids=...) must name the app client IDs whose tokens are accepted"
        )
    url = f"{base or f'https://cognito-idp.{prefix}.amazonaws.com'}/{pool}"
    return Issuer(
        url,
        clients=clients,
        audience_required=False,
        scopes_claims=("scope",),
        roles_claims=("cognito:groups",),
        discovery="oidc",
        checks=(checks.cognito_access_token,),
        explain=checks.cognito_explain,
    )
