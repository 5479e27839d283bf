"""The validated, frozen settings of one guard, built from the middleware's arguments."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from oauthguard._htu import Network, parse_networks, parse_origin
from oauthguard._paths import PathTable, configured_path
from oauthguard._urls import https_or_loopback
from oauthguard.dpop import DEFAULT_DPOP_ALGORITHMS, Mode
from oauthguard.errors import ConfigurationError
from oauthguard.introspection import Introspection
from oauthguard.jwt import ASYMMETRIC_ALGORITHMS
from oauthguard.policy import Requirement, build_implications, build_rules

DEFAULT_ALGORITHMS = ("RS256", "PS256", "ES256", "EdDSA")
TOKEN_FORMATS = ("auto", "jwt", "opaque")


@dataclass(frozen=True)
class GuardConfig:
    """Every setting of the core guard, checked once at construction."""

    resource: str
    authorization_servers: tuple[str, ...]
    #: Every audience a token may have: the default resource's and every other resource's.
    audiences: frozenset[str]
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    leeway: float = 30
    jwks_uri: str | None = None
    jwks_cache_ttl: float = 600
    jwks_refresh_cooldown: float = 30
    jwks_max_stale: float = 86400
    strict_typ: bool = False
    scopes_claim: tuple[str, ...] = ("scope", "scp")
    public_paths: tuple[str, ...] = ()
    scopes_supported: tuple[str, ...] = ()
    resource_name: str | None = None
    resource_documentation: str | None = None
    max_token_bytes: int = 16 * 1024
    token_cache_size: int = 10_000
    realm: str | None = None
    dpop: Mode = "allowed"
    dpop_algorithms: tuple[str, ...] = DEFAULT_DPOP_ALGORITHMS
    dpop_max_age: float = 60
    trusted_proxies: tuple[Network, ...] = ()
    public_origin: str | None = None
    #: Per-route policy: path rules, every resource served (the default first), the
    #: audiences of the default resource, and the scope hierarchy (closed transitively).
    rules: PathTable[Requirement] = field(default_factory=PathTable)
    resources: tuple[str, ...] = ()
    resource_audiences: frozenset[str] = frozenset()
    scope_implies: Mapping[str, frozenset[str]] = field(default_factory=dict)
    http_timeout: float = 5.0
    introspection: Introspection | None = None
    token_format: str = "jwt"


def _strings(name: str, value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    items = (value,) if isinstance(value, str) else tuple(value)
    if not all(isinstance(item, str) and item for item in items):
        raise ConfigurationError(f"{name} must be a string or an iterable of non-empty strings")
    return items


def check_resource(resource: object, name: str = "resource") -> str:
    """RFC 9728 §1.2 / RFC 8707 §2: an absolute https URL without a fragment."""
    if not isinstance(resource, str):
        raise ConfigurationError(f"{name} must be a URL string, got {type(resource).__name__}")
    parts = urlsplit(resource)
    if not parts.scheme or not parts.netloc:
        raise ConfigurationError(f"{name} must be an absolute URL, got {resource!r}")
    if parts.fragment or resource.endswith("#"):
        raise ConfigurationError(f"{name} must not have a fragment: {resource!r}")
    if not https_or_loopback(resource):
        raise ConfigurationError(
            f"{name} must be an https URL (http only for localhost and 127.0.0.1), got {resource!r}"
        )
    return resource


def _optional_text(name: str, value: object, url: bool = False) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or not value.isprintable():
        raise ConfigurationError(f"{name} must be a non-empty printable string or None")
    if url and not urlsplit(value).scheme:
        raise ConfigurationError(f"{name} must be an absolute URL, got {value!r}")
    return value


def _positive(name: str, value: object) -> float:
    if _non_negative(name, value) == 0:
        raise ConfigurationError(f"{name} must be a positive number of seconds")
    return float(value)  # type: ignore[arg-type]


def check_issuers(value: object) -> tuple[str, ...]:
    """RFC 8414 §2: issuers are https URLs without query or fragment (http on loopback)."""
    if isinstance(value, str):
        value = [value]
    issuers = _strings("authorization_servers", value)  # type: ignore[arg-type]
    if not issuers:
        raise ConfigurationError("authorization_servers needs at least one issuer URL")
    for issuer in issuers:
        parts = urlsplit(issuer)
        if not https_or_loopback(issuer) or parts.query or parts.fragment:
            raise ConfigurationError(
                f"authorization_servers: {issuer!r} is not an https URL without query or "
                "fragment (http is allowed only for localhost and 127.0.0.1)"
            )
    return issuers


def check_algorithms(value: Iterable[str], name: str = "algorithms") -> tuple[str, ...]:
    """RFC 8725 §3.1-3.2 (RFC 9449 §4.3 for DPoP): asymmetric only; never none or HS*."""
    algorithms = _strings(name, value)
    if not algorithms:
        raise ConfigurationError(f"{name} must name at least one algorithm")
    for alg in algorithms:
        if alg not in ASYMMETRIC_ALGORITHMS:
            raise ConfigurationError(
                f"{name}: {alg!r} is not accepted; use asymmetric algorithms "
                f"({', '.join(sorted(ASYMMETRIC_ALGORITHMS))}); 'none' and HS* never are"
            )
    return algorithms


def check_token_format(
    token_format: str | None, introspection: object, issuers: tuple[str, ...]
) -> str:
    """Which verifier(s) the guard uses; ``introspection`` must fit ``token_format``."""
    if introspection is not None and not isinstance(introspection, Introspection):
        raise ConfigurationError(
            "introspection must be an oauthguard.Introspection(...), got "
            f"{type(introspection).__name__}"
        )
    if token_format is None:
        token_format = "jwt" if introspection is None else "auto"
    if token_format not in TOKEN_FORMATS:
        raise ConfigurationError(
            f"token_format must be one of {', '.join(TOKEN_FORMATS)}; got {token_format!r}"
        )
    if token_format == "jwt" and introspection is not None:
        raise ConfigurationError(
            "token_format='jwt' never introspects: drop introspection= "
            "or use token_format='auto' or 'opaque'"
        )
    if token_format != "jwt" and introspection is None:
        raise ConfigurationError(
            f"token_format={token_format!r} needs introspection=Introspection(client_id=..., ...)"
        )
    if introspection is not None and introspection.endpoint is None and len(issuers) != 1:
        raise ConfigurationError(
            "Introspection(endpoint=...) must be given with several authorization servers: "
            "the endpoint is only discovered from the metadata of a single one"
        )
    return token_format


def _non_negative(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigurationError(f"{name} must be a non-negative number of seconds")
    return float(value)


def check_dpop(mode: object, max_age: object) -> tuple[Mode, float]:
    """``dpop`` is allowed, required or disabled; proofs live 1 to 3600 seconds."""
    if mode not in ("allowed", "required", "disabled"):
        raise ConfigurationError(f"dpop must be 'allowed', 'required' or 'disabled', got {mode!r}")
    if (
        isinstance(max_age, bool)
        or not isinstance(max_age, (int, float))
        or not 1 <= max_age <= 3600
    ):
        raise ConfigurationError("dpop_max_age must be 1 to 3600 seconds")
    return mode, float(max_age)


def check_trusted_proxies(value: object) -> tuple[Network, ...]:
    """IP addresses or networks whose X-Forwarded-* and Forwarded headers are believed."""
    if isinstance(value, str):
        value = [value]
    try:
        return parse_networks(_strings("trusted_proxies", value))  # type: ignore[arg-type]
    except ValueError as exc:
        raise ConfigurationError(f"trusted_proxies: {exc}") from None


def check_public_origin(value: object) -> str | None:
    """The origin every DPoP proof's htu names (RFC 9449 §4.3 check 9), normalized."""
    if value is None:
        return None
    example = "like 'https://api.example.com' or 'https://api.example.com:8443'"
    if not isinstance(value, str):
        raise ConfigurationError(
            f"public_origin must be a string {example}, or None; got {type(value).__name__}"
        )
    try:
        return parse_origin(value)
    except ValueError as exc:
        raise ConfigurationError(
            f"public_origin {value!r} {exc}: give only the scheme, host and port clients "
            f"reach the server at, {example}"
        ) from None


def check_jwks_uri(jwks_uri: object, issuers: tuple[str, ...]) -> None:
    """An explicit jwks_uri belongs to the one issuer; https, or http on loopback."""
    if jwks_uri is None:
        return
    if len(issuers) != 1:
        raise ConfigurationError(
            "jwks_uri can only be given with exactly one authorization server; with "
            "several, each issuer's jwks_uri is discovered from its metadata"
        )
    if not isinstance(jwks_uri, str) or not https_or_loopback(jwks_uri):
        raise ConfigurationError(f"jwks_uri must be an https URL, got {jwks_uri!r}")


def check_public_paths(value: Iterable[str]) -> tuple[str, ...]:
    """Exact paths, or prefixes marked by one trailing ``*``; decoded, in normal form."""
    paths = _strings("public_paths", value)
    for path in paths:
        if not path.startswith("/") or "*" in path[:-1]:
            raise ConfigurationError(
                f"public_paths: {path!r} must start with '/' and may only end with '*'"
            )
    return tuple(
        configured_path(path[:-1], "public_paths", prefix=True) + "*"
        if path.endswith("*")
        else configured_path(path, "public_paths")
        for path in paths
    )


def _integer(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f"{name} must be an integer of at least {minimum}")


def build_config(
    *,
    resource: str,
    authorization_servers: str | Iterable[str],
    audiences: str | Iterable[str] | None = None,
    algorithms: Iterable[str] = DEFAULT_ALGORITHMS,
    leeway: float = 30,
    jwks_uri: str | None = None,
    jwks_cache_ttl: float = 600,
    jwks_refresh_cooldown: float = 30,
    jwks_max_stale: float = 86400,
    strict_typ: bool = False,
    scopes_claim: str | Iterable[str] = ("scope", "scp"),
    public_paths: Iterable[str] = (),
    scopes_supported: Iterable[str] | None = None,
    resource_name: str | None = None,
    resource_documentation: str | None = None,
    max_token_bytes: int = 16 * 1024,
    token_cache_size: int = 10_000,
    realm: str | None = None,
    dpop: str = "allowed",
    dpop_algorithms: Iterable[str] = DEFAULT_DPOP_ALGORITHMS,
    dpop_max_age: float = 60,
    trusted_proxies: str | Iterable[str] = (),
    public_origin: str | None = None,
    rules: Mapping[Any, Any] | None = None,
    resources: str | Iterable[str] = (),
    scope_implies: Mapping[str, Iterable[str]] | None = None,
    http_timeout: float = 5.0,
    introspection: Introspection | None = None,
    token_format: str | None = None,
) -> GuardConfig:
    """Check every argument and build the frozen settings; ``ConfigurationError`` if wrong."""
    resource = check_resource(resource)
    issuers = check_issuers(authorization_servers)
    check_jwks_uri(jwks_uri, issuers)
    audience_list = _strings("audiences", audiences) or (resource,)
    rule_table = build_rules(rules)
    served = served_resources(resource, resources, rule_table)
    _integer("max_token_bytes", max_token_bytes, minimum=64)
    _integer("token_cache_size", token_cache_size, minimum=0)
    paths = check_public_paths(public_paths)
    dpop_mode, max_age = check_dpop(dpop, dpop_max_age)
    return GuardConfig(
        resource=resource,
        authorization_servers=issuers,
        # The default resource's tokens carry `audiences` (which replace its identifier when
        # given); the other resources' carry their identifier (checked per path).
        audiences=frozenset(audience_list).union(served[1:]),
        algorithms=check_algorithms(algorithms),
        leeway=_non_negative("leeway", leeway),
        jwks_uri=jwks_uri,
        jwks_cache_ttl=_non_negative("jwks_cache_ttl", jwks_cache_ttl),
        jwks_refresh_cooldown=_non_negative("jwks_refresh_cooldown", jwks_refresh_cooldown),
        jwks_max_stale=_non_negative("jwks_max_stale", jwks_max_stale),
        strict_typ=bool(strict_typ),
        scopes_claim=_strings("scopes_claim", scopes_claim) or ("scope",),
        public_paths=paths,
        scopes_supported=_strings("scopes_supported", scopes_supported),
        resource_name=_optional_text("resource_name", resource_name),
        resource_documentation=_optional_text(
            "resource_documentation", resource_documentation, url=True
        ),
        max_token_bytes=max_token_bytes,
        token_cache_size=token_cache_size,
        realm=_optional_text("realm", realm),
        dpop=dpop_mode,
        dpop_algorithms=check_algorithms(dpop_algorithms, "dpop_algorithms"),
        dpop_max_age=max_age,
        trusted_proxies=check_trusted_proxies(trusted_proxies),
        public_origin=check_public_origin(public_origin),
        rules=rule_table,
        resources=served,
        resource_audiences=frozenset(audience_list),
        scope_implies=build_implications(scope_implies),
        http_timeout=_positive("http_timeout", http_timeout),
        introspection=introspection,
        token_format=check_token_format(token_format, introspection, issuers),
    )


def served_resources(
    resource: str, resources: str | Iterable[str], rules: PathTable[Requirement]
) -> tuple[str, ...]:
    """RFC 9728 §3: every resource the app serves, the default first: ``resources`` and
    the audiences of ``rules``. Each is served at its own path, so no two may share one."""
    named = _strings("resources", resources) + tuple(
        rule.audience for _, rule in rules.items() if rule.audience is not None
    )
    served = [resource]
    paths = {urlsplit(resource).path.rstrip("/"): resource}
    for other in named:
        if other in served:
            continue
        check_resource(other, "resources")
        path = urlsplit(other).path.rstrip("/")
        if path in paths:
            raise ConfigurationError(
                f"resources: {other!r} and {paths[path]!r} have the same path {path or '/'!r}; "
                "each resource of one app needs its own path (its requests and metadata "
                "document are found by it)"
            )
        paths[path] = other
        served.append(other)
    return tuple(served)
