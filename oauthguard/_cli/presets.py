"""The ``Issuer`` setting an issuer URL stands for: a provider's preset where its URL says
which provider it is (or ``--provider`` does), so its checks and fixes are the guard's own."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from urllib.parse import urlsplit

import oauthguard.providers as providers
from oauthguard._cli.report import UsageError
from oauthguard._core.issuer import Issuer
from oauthguard._wire.errors import ConfigurationError

PROVIDERS = ("auto", "none", "auth0", "entra", "okta", "keycloak", "cognito")
_ENTRA_V2 = re.compile(r"(?P<authority>https?://[^/]+)/(?P<tenant>[^/]+)/v2\.0/?")
_V1_HOSTS = ("sts.windows.net", "sts.chinacloudapi.cn")
_KEYCLOAK = re.compile(r"(?P<base>.+)/realms/(?P<realm>[^/]+)/?")
_OKTA = re.compile(r"(?P<base>.+)/oauth2/(?P<server>[^/]+)/?")


def detected(url: str) -> str:
    """The provider an issuer URL is of, by its host (Keycloak by its path), or ``none``."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host.endswith(".auth0.com"):
        return "auth0"
    if host.startswith("login.microsoftonline.") or host in _V1_HOSTS:
        return "entra"
    if host.endswith((".okta.com", ".oktapreview.com", ".okta-emea.com")):
        return "okta"
    if host.startswith("cognito-idp.") and host.endswith(".amazonaws.com"):
        return "cognito"
    if _KEYCLOAK.fullmatch(url):
        return "keycloak"
    return "none"


def issuer_setting(
    url: str,
    provider: str,
    *,
    audience: str | None,
    clients: Sequence[str],
    allow_http: bool,
) -> tuple[Issuer, ...]:
    """The ``Issuer`` (or Entra's two) for ``url``; ``UsageError`` when the provider's
    preset cannot be made of what was given, naming the option that is missing."""
    name = detected(url) if provider == "auto" else provider
    try:
        made = _preset(name, url, audience, tuple(clients), allow_http)
    except ConfigurationError as exc:
        plain = "" if name == "none" else " (--provider none takes it as a plain issuer)"
        raise UsageError(f"--issuer {url} with the {name} preset: {exc}{plain}") from None
    if made.url.replace("{tenant}", "") != url and made.url != url:
        raise UsageError(
            f"--issuer {url} is not a {name} issuer URL (its preset's issuer would be "
            f"{made.url}); pass --provider none to take it as a plain issuer"
        )
    return (made,)


def _preset(
    name: str, url: str, audience: str | None, clients: tuple[str, ...], allow_http: bool
) -> Issuer:
    if name == "auth0":
        return _with_clients(providers.auth0(url.rstrip("/"), audience=audience), clients)
    if name == "keycloak":
        match = _KEYCLOAK.fullmatch(url)
        if match is None:
            raise ConfigurationError("a Keycloak issuer is {url}/realms/{realm}")
        return providers.keycloak(
            match["base"], match["realm"], audience, allow_http=allow_http, clients=clients
        )
    if name == "okta":
        match = _OKTA.fullmatch(url)
        if match is None:
            raise ConfigurationError("an Okta issuer is https://{domain}/oauth2/{server}")
        okta = providers.okta(match["base"], match["server"], audience or "api://default")
        return _with_clients(okta, clients)
    if name == "entra":
        return _with_clients(_entra(url, audience), clients)
    if name == "cognito":
        if not clients:
            raise ConfigurationError("Cognito tokens are checked by their client: pass --client")
        return providers.cognito(url.rstrip("/"), client_ids=clients)
    audiences = (audience,) if audience else ()
    return Issuer(url, audiences=audiences, clients=clients, allow_http=allow_http)


def _entra(url: str, audience: str | None) -> Issuer:
    if audience is None:
        raise ConfigurationError("pass --audience with the API's Application (client) ID")
    parts = urlsplit(url)
    if parts.hostname in _V1_HOSTS:  # v1.0: https://sts.windows.net/{tid}/
        tenant = parts.path.strip("/")
        return providers.entra(audience, tenant=tenant, versions=(1,))
    match = _ENTRA_V2.fullmatch(url)
    if match is None:
        raise ConfigurationError("an Entra issuer is {authority}/{tenant}/v2.0")
    return providers.entra(audience, tenant=match["tenant"], authority=match["authority"])


def _with_clients(issuer: Issuer, clients: tuple[str, ...]) -> Issuer:
    return dataclasses.replace(issuer, clients=clients) if clients else issuer
