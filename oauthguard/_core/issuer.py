"""``Issuer``: one authorization server and what differs in how its tokens are read."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from oauthguard._http.urls import INSECURE_HTTP, insecure_http, is_insecure
from oauthguard._verify.claims import claim_path
from oauthguard._verify.trust import TENANT, TENANT_SYNTAX, Explain, TokenCheck
from oauthguard._wire.errors import ConfigurationError

logger = logging.getLogger("oauthguard")

Discovery = Literal["auto", "oauth", "oidc"]
#: How ``oauthguard.exchange.TokenExchange`` exchanges a token at an issuer.
ExchangeFlow = Literal["rfc8693", "entra_obo"]


def http_refusal(name: str, url: str, issuer_opt_in: bool = True) -> ConfigurationError:
    """The error for an http URL on a non-loopback host, naming the opt-ins."""
    opt_in = "Issuer(..., allow_http=True) or " if issuer_opt_in else ""
    return ConfigurationError(
        f"{name}: {url!r} is not an https URL. Plain http is allowed on loopback "
        f"(localhost, 127.0.0.1, ::1); for another host (a development container) opt in "
        f"with {opt_in}the environment variable {INSECURE_HTTP}=1"
    )


def _strings(name: str, value: object) -> tuple[str, ...]:
    items = (value,) if isinstance(value, str) else value
    if not isinstance(items, Iterable):
        raise ConfigurationError(f"{name} must be a string or an iterable of strings")
    result = tuple(items)
    if not all(isinstance(item, str) and item for item in result):
        raise ConfigurationError(f"{name} must be a string or an iterable of non-empty strings")
    return result


def claim_names(name: str, value: object) -> tuple[str, ...] | None:
    """Claim names (``None``: the defaults), each a name or a dotted path."""
    if value is None:
        return None
    names = _strings(name, value)
    for claim in names:
        try:
            claim_path(claim)
        except ValueError as exc:
            raise ConfigurationError(
                f"{name}: {exc}; write a path as names joined by single dots "
                "('realm_access.roles'), or a claim name without dots"
            ) from None
    return names


def _set(instance: object, name: str, value: object) -> None:
    object.__setattr__(instance, name, value)  # normalizing a frozen dataclass's own field


@dataclass(frozen=True)
class Issuer:
    """An authorization server whose tokens the resource server accepts, and what differs
    in how its tokens are read. A plain URL in ``authorization_servers`` is ``Issuer(url)``.

    ``url``: its issuer identifier (RFC 8414 §2: https, no query or fragment), matched
    exactly against a token's ``iss`` and the ``issuer`` of its metadata. It may hold
    ``{tenant}`` once: tokens whose ``iss`` fills it with one of ``tenants`` are accepted.
    ``jwks_uri``: its keys' location instead of discovering it (may hold ``{tenant}``; one
    without it is one JWKS shared by every tenant). ``internal_url``: the base the server
    fetches metadata, keys and introspection from when ``url`` cannot be reached from inside
    the deployment; discovered URLs under ``url`` are fetched under it instead.
    ``audiences``: audiences accepted for this issuer's tokens beside the resource's own
    (RFC 9068 §4). ``clients``: if set, the token's client (``client_id``, ``azp``, ``cid``
    or ``appid``) must be one of these.
    ``scopes_claims`` / ``roles_claims``: the claims holding scopes and roles (None: the
    ``JWT(...)`` defaults), all read and united; each a space-separated string or an array.
    A dotted name is a path into nested objects (``realm_access.roles``); a name with
    ``://`` (``https://example.com/roles``) or without a dot is one claim's name.
    ``tenants``: the allowed values of ``{tenant}``, a list or a function ``tenant -> bool``
    (its answers are cached). ``allow_http=True``: plain http on a host other than loopback
    (a development container), for ``url``, ``jwks_uri``, ``internal_url`` and the URLs of
    the metadata; ``OAUTHGUARD_INSECURE_HTTP=1`` allows it for every issuer.
    ``discovery``: ``"oauth"`` (RFC 8414 only), ``"oidc"`` (OpenID Connect Discovery only)
    or ``"auto"`` (RFC 8414, then OpenID Connect). ``audience_required=False``: a token
    without ``aud`` passes the audience check (Cognito); one with ``aud`` still needs one
    of ours. ``checks``: ``(header, claims) -> None`` run after the standard checks, each
    raising ``InvalidToken(description)`` to refuse; for an introspected token ``claims``
    are the answer's members and ``header`` is empty. ``explain(header, claims, description)``:
    the fix to log for a refused token of this issuer, or None. ``token_exchange``: how
    ``oauthguard.exchange.TokenExchange`` exchanges tokens at this issuer: ``"rfc8693"``
    (RFC 8693 token exchange) or ``"entra_obo"`` (Microsoft Entra's on-behalf-of flow, which
    ``providers.entra`` sets).
    """

    url: str
    jwks_uri: str | None = None
    internal_url: str | None = None
    audiences: tuple[str, ...] = ()
    clients: tuple[str, ...] = ()
    scopes_claims: tuple[str, ...] | None = None
    roles_claims: tuple[str, ...] | None = None
    tenants: Iterable[str] | Callable[[str], bool] | None = None
    allow_http: bool = False
    discovery: Discovery = "auto"
    audience_required: bool = True
    checks: tuple[TokenCheck, ...] = ()
    explain: Explain | None = None
    token_exchange: ExchangeFlow = "rfc8693"

    def __post_init__(self) -> None:
        if not isinstance(self.allow_http, bool):
            raise ConfigurationError(
                f"Issuer(allow_http=...) must be a bool, not {self.allow_http!r}"
            )
        self._check_url()
        for name in ("jwks_uri", "internal_url"):
            self._check_other_url(name, getattr(self, name))
        _set(self, "audiences", _strings("Issuer(audiences=...)", self.audiences))
        _set(self, "clients", _strings("Issuer(clients=...)", self.clients))
        for name in ("scopes_claims", "roles_claims"):
            _set(self, name, claim_names(f"Issuer({name}=...)", getattr(self, name)))
        _set(self, "tenants", self._checked_tenants())
        if self.discovery not in ("auto", "oauth", "oidc"):
            raise ConfigurationError(
                "Issuer(discovery=...) must be 'auto' (RFC 8414, then OpenID Connect), "
                f"'oauth' (RFC 8414 only) or 'oidc' (OpenID Connect only); got {self.discovery!r}"
            )
        if not isinstance(self.audience_required, bool):
            raise ConfigurationError("Issuer(audience_required=...) must be True or False")
        checks = (self.checks,) if callable(self.checks) else tuple(self.checks)
        if not all(callable(check) for check in checks):
            raise ConfigurationError(
                "Issuer(checks=...) must be callables (header, claims) -> None"
            )
        _set(self, "checks", checks)
        if self.token_exchange not in ("rfc8693", "entra_obo"):
            raise ConfigurationError(
                "Issuer(token_exchange=...) must be 'rfc8693' (RFC 8693) or 'entra_obo' "
                f"(Entra's on-behalf-of flow); got {self.token_exchange!r}"
            )
        if self.explain is not None and not callable(self.explain):
            raise ConfigurationError(
                "Issuer(explain=...) must be a callable (header, claims, description) -> str | None"
            )

    @property
    def http_allowed(self) -> bool:
        """Whether plain http on a non-loopback host is allowed for this issuer."""
        return self.allow_http or insecure_http()

    @property
    def is_template(self) -> bool:
        """Whether ``url`` holds ``{tenant}``."""
        return TENANT in self.url

    def _check_url(self) -> None:
        url = self.url
        if not isinstance(url, str) or not url:
            raise ConfigurationError(f"Issuer(url=...) must be a URL string, got {url!r}")
        if url.count(TENANT) > 1:
            raise ConfigurationError(f"Issuer(url=...): {url!r} holds {TENANT} more than once")
        sample = url.replace(TENANT, "tenant")
        parts = urlsplit(sample)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ConfigurationError(
                f"authorization_servers: {url!r} is not an https URL "
                "(http is allowed only for localhost and 127.0.0.1 without opting in)"
            )
        if parts.query or parts.fragment or "?" in sample or "#" in sample:
            raise ConfigurationError(
                f"authorization_servers: {url!r} is not a URL without query or fragment"
            )
        if is_insecure(sample) and not self.http_allowed:
            raise http_refusal("authorization_servers", url)

    def _check_other_url(self, name: str, value: object) -> None:
        if value is None:
            return
        if not isinstance(value, str) or not value:
            raise ConfigurationError(f"Issuer({self.url!r}, {name}=...) must be a URL string")
        if TENANT in value and not self.is_template:
            raise ConfigurationError(
                f"Issuer({self.url!r}, {name}=...) holds {TENANT} but the url does not"
            )
        sample = value.replace(TENANT, "tenant")
        parts = urlsplit(sample)
        if parts.scheme not in ("https", "http") or not parts.hostname or parts.fragment:
            raise ConfigurationError(
                f"Issuer({self.url!r}, {name}=...) must be an https URL without fragment, "
                f"got {value!r}"
            )
        if is_insecure(sample) and not self.http_allowed:
            raise http_refusal(f"Issuer({self.url!r}, {name}=...)", value)

    def _checked_tenants(self) -> frozenset[str] | Callable[[str], bool] | None:
        tenants = self.tenants
        if tenants is None:
            if self.is_template:
                raise ConfigurationError(
                    f"Issuer({self.url!r}) holds {TENANT}: give tenants=[...] or a function "
                    "tenant -> bool that says which tenants' tokens are accepted"
                )
            return None
        if not self.is_template:
            raise ConfigurationError(
                f"Issuer(tenants=...) needs a url holding {TENANT}, got {self.url!r}"
            )
        if callable(tenants):
            return tenants
        allowed = frozenset(_strings("Issuer(tenants=...)", tenants))
        for tenant in allowed:
            if not TENANT_SYNTAX.fullmatch(tenant):
                raise ConfigurationError(
                    f"Issuer(tenants=...): {tenant!r} is not a tenant (letters, digits, "
                    "'.', '_' and '-', at most 64, not starting with '.')"
                )
        if not allowed:
            raise ConfigurationError("Issuer(tenants=...) names no tenant")
        return allowed


#: What ``authorization_servers`` takes: URLs, ``Issuer``s, and groups of ``Issuer``s (a
#: preset that needs several, such as ``providers.entra(versions=(1, 2))``), mixed.
IssuerEntry = str | Issuer | tuple[Issuer, ...]


def issuers(value: object) -> tuple[Issuer, ...]:
    """``authorization_servers``: a URL, an ``Issuer``, or several of them mixed (a tuple of
    ``Issuer``s among them stands for its members)."""
    items = [value] if isinstance(value, str | Issuer) else value
    if not isinstance(items, Iterable):
        raise ConfigurationError(
            "authorization_servers must be an issuer URL, an Issuer(...), or a list of them; "
            f"got {type(value).__name__}"
        )
    members = [
        member
        for item in items
        for member in (
            item
            if isinstance(item, tuple) and item and all(isinstance(each, Issuer) for each in item)
            else (item,)
        )
    ]
    result = tuple(item if isinstance(item, Issuer) else Issuer(item) for item in members)
    if not result:
        raise ConfigurationError("authorization_servers needs at least one issuer URL")
    urls = [issuer.url for issuer in result]
    if len(set(urls)) != len(urls):
        raise ConfigurationError(
            "authorization_servers: an issuer is given twice; list each issuer once "
            "(one Issuer(...) holds all of its settings)"
        )
    return result


def warn_insecure(issuers: Iterable[Issuer], resources: Iterable[str]) -> None:
    """One WARNING per plain-http URL on a non-loopback host that an opt-in allowed."""
    for issuer in issuers:
        for name in ("url", "jwks_uri", "internal_url"):
            url = getattr(issuer, name)
            if url is not None and is_insecure(url.replace(TENANT, "tenant")):
                why = "allow_http=True" if issuer.allow_http else f"{INSECURE_HTTP}=1"
                logger.warning(
                    "the issuer %s is reached over plain http at %s (%s): tokens and keys "
                    "can be read and changed on the way; only for development",
                    issuer.url,
                    url,
                    why,
                )
    for resource in resources:
        if is_insecure(resource):
            logger.warning(
                "the resource %s is served over plain http (%s=1): only for development",
                resource,
                INSECURE_HTTP,
            )
