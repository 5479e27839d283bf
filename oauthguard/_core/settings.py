"""The settings of a resource server, in groups that check themselves when they are built.

Each group is a frozen dataclass (``Introspection`` is the model): a wrong value raises
``ConfigurationError`` naming the argument and the fix as soon as the group is built, so a
group built at import time fails at import, not on the first request.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from oauthguard._core.issuer import Issuer as Issuer
from oauthguard._core.issuer import claim_names, http_refusal
from oauthguard._core.issuer import issuers as issuers
from oauthguard._dpop.htu import Network, parse_networks, parse_origin
from oauthguard._dpop.nonces import DPoPNonces, check_nonces
from oauthguard._dpop.proof import DEFAULT_DPOP_ALGORITHMS
from oauthguard._dpop.replay import ReplayStore
from oauthguard._http.urls import insecure_http, is_insecure
from oauthguard._verify.jwt import ASYMMETRIC_ALGORITHMS
from oauthguard._wire.config import seconds
from oauthguard._wire.errors import ConfigurationError
from oauthguard._wire.tokens import is_scope_token, split_scope

DEFAULT_ALGORITHMS = ("RS256", "PS256", "ES256", "EdDSA")
DPoPMode = Literal["allowed", "required", "disabled"]


def strings(name: str, value: str | Iterable[str] | None) -> tuple[str, ...]:
    """``value`` as a tuple of non-empty strings (one string is one item)."""
    if value is None:
        return ()
    items = (value,) if isinstance(value, str) else tuple(value)
    if not all(isinstance(item, str) and item for item in items):
        raise ConfigurationError(f"{name} must be a string or an iterable of non-empty strings")
    return items


def integer(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f"{name} must be an integer of at least {minimum}, got {value!r}")
    return value


def check_algorithms(value: Iterable[str], name: str) -> tuple[str, ...]:
    """RFC 8725 §3.1-3.2 (RFC 9449 §4.3 for DPoP): asymmetric only; never none or HS*."""
    algorithms = strings(name, value)
    if not algorithms:
        raise ConfigurationError(
            f"{name} must name at least one algorithm, like ('RS256', 'ES256')"
        )
    for alg in algorithms:
        if alg not in ASYMMETRIC_ALGORITHMS:
            raise ConfigurationError(
                f"{name}: {alg!r} is not accepted; use asymmetric algorithms "
                f"({', '.join(sorted(ASYMMETRIC_ALGORITHMS))}); 'none' and HS* never are"
            )
    return algorithms


def _set(instance: object, name: str, value: object) -> None:
    object.__setattr__(instance, name, value)  # normalizing a frozen dataclass's own field


@dataclass(frozen=True)
class JWT:
    """How JWT access tokens are checked (RFC 9068, RFC 8725) and their issuers' keys kept.

    ``algorithms``: the JWS algorithms accepted, asymmetric only (``none`` and ``HS*`` never).
    ``leeway``: seconds of clock skew allowed on ``exp``, ``nbf`` and ``iat`` (also on DPoP
    proofs' ``iat`` and introspection answers). ``strict_typ=True`` requires
    ``typ: at+jwt`` (RFC 9068 §2.1); by default a token without ``typ`` passes, and one
    with a ``typ`` of another kind of JWT (ID tokens, logout tokens, DPoP proofs) never does.
    ``scopes_claims`` / ``roles_claims``: the claims that hold the scopes and the roles of
    tokens from plain issuer URLs (an ``Issuer(...)`` may name its own), every one read and
    united; a dotted name is a path into nested objects (see ``Issuer``).
    ``keys_ttl``: how long a JWKS is used before it is fetched again (less when its
    ``Cache-Control`` says so); ``keys_refresh_cooldown``: the least time between two
    fetches for a token whose ``kid`` is unknown; ``keys_max_stale``: how long the last keys
    stay in use while the issuer cannot be reached. ``require_keys_at_startup=True`` makes
    startup fail (``StartupError``; under uvicorn the process exits with status 3) when no
    issuer's keys can be fetched then; by default the server starts and answers 503 until
    they can be.
    """

    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    leeway: float = 30
    strict_typ: bool = False
    scopes_claims: tuple[str, ...] = ("scope", "scp")
    roles_claims: tuple[str, ...] = ()
    keys_ttl: float = 600
    keys_refresh_cooldown: float = 30
    keys_max_stale: float = 86400
    require_keys_at_startup: bool = False

    def __post_init__(self) -> None:
        _set(self, "algorithms", check_algorithms(self.algorithms, "JWT(algorithms=...)"))
        _set(self, "leeway", seconds("JWT(leeway=...)", self.leeway))
        _set(self, "strict_typ", bool(self.strict_typ))
        scopes = claim_names("JWT(scopes_claims=...)", self.scopes_claims)
        _set(self, "scopes_claims", scopes or ("scope",))
        _set(self, "roles_claims", claim_names("JWT(roles_claims=...)", self.roles_claims))
        _set(self, "keys_ttl", seconds("JWT(keys_ttl=...)", self.keys_ttl))
        cooldown = seconds("JWT(keys_refresh_cooldown=...)", self.keys_refresh_cooldown)
        _set(self, "keys_refresh_cooldown", cooldown)
        _set(self, "keys_max_stale", seconds("JWT(keys_max_stale=...)", self.keys_max_stale))
        if not isinstance(self.require_keys_at_startup, bool):
            raise ConfigurationError(
                "JWT(require_keys_at_startup=...) must be True (startup fails without keys) "
                f"or False (503 until they come), got {self.require_keys_at_startup!r}"
            )


@dataclass(frozen=True)
class DPoP:
    """Demonstrating proof of possession (RFC 9449) for this resource.

    ``mode``: ``"allowed"`` (Bearer and DPoP-bound tokens), ``"required"`` (DPoP only) or
    ``"disabled"``. ``algorithms``: the proof algorithms accepted (asymmetric only).
    ``max_age``: seconds a proof is accepted after its ``iat`` (1 to 3600).
    ``nonces``: a ``DPoPNonces(secret=..., lifetime=...)`` makes clients use server nonces
    (§8, §9); the secret is shared by every worker and host. ``False``: no nonces.
    ``replay_store``: where proofs' ``jti`` are recorded (default: this process's memory; a
    ``RedisReplayStore`` for several workers or hosts). ``trusted_proxies``: addresses or
    networks whose ``Forwarded`` / ``X-Forwarded-*`` headers are believed for ``htu``.
    ``public_origin``: the origin every proof's ``htu`` must name (``https://api.example.com``),
    instead of the one the request was received at.
    """

    mode: DPoPMode = "allowed"
    algorithms: tuple[str, ...] = DEFAULT_DPOP_ALGORITHMS
    max_age: float = 60
    nonces: DPoPNonces | bool = False
    replay_store: ReplayStore | None = field(default=None, compare=False)
    trusted_proxies: str | Iterable[str] = ()
    public_origin: str | None = None
    #: ``trusted_proxies`` parsed.
    networks: tuple[Network, ...] = field(init=False, default=(), repr=False)

    def __post_init__(self) -> None:
        if self.mode not in ("allowed", "required", "disabled"):
            raise ConfigurationError(
                f"DPoP(mode=...) must be 'allowed', 'required' or 'disabled', got {self.mode!r}"
            )
        _set(self, "algorithms", check_algorithms(self.algorithms, "DPoP(algorithms=...)"))
        max_age = seconds("DPoP(max_age=...)", self.max_age, positive=True)
        if not 1 <= max_age <= 3600:
            raise ConfigurationError(f"DPoP(max_age=...) must be 1 to 3600 seconds, got {max_age}")
        _set(self, "max_age", max_age)
        _set(self, "nonces", check_nonces(self.nonces) or False)
        proxies = strings("DPoP(trusted_proxies=...)", self.trusted_proxies)
        _set(self, "trusted_proxies", proxies)
        try:
            _set(self, "networks", parse_networks(proxies))
        except ValueError as exc:
            raise ConfigurationError(f"DPoP(trusted_proxies=...): {exc}") from None
        _set(self, "public_origin", _public_origin(self.public_origin))

    @classmethod
    def of(cls, value: DPoP | str | None) -> DPoP:
        """``dpop=`` as given: a ``DPoP(...)``, or its mode alone (``dpop="required"``)."""
        if value is None:
            return cls()
        if isinstance(value, DPoP):
            return value
        if isinstance(value, str):
            return cls(mode=value)  # type: ignore[arg-type]  # checked by __post_init__
        raise ConfigurationError(
            f"dpop must be 'allowed', 'required', 'disabled' or DPoP(...), got {value!r}"
        )


def _public_origin(value: object) -> str | None:
    """RFC 9449 §4.3 check 9: the origin every htu names, normalized."""
    if value is None:
        return None
    example = "like 'https://api.example.com' or 'https://api.example.com:8443'"
    if not isinstance(value, str):
        raise ConfigurationError(
            f"DPoP(public_origin=...) must be a string {example}, or None; "
            f"got {type(value).__name__}"
        )
    try:
        return parse_origin(value)
    except ValueError as exc:
        raise ConfigurationError(
            f"DPoP(public_origin={value!r}) {exc}: give only the scheme, host and port clients "
            f"reach the server at, {example}"
        ) from None


@dataclass(frozen=True)
class Limits:
    """Bounds on what one token and the caches may cost.

    ``max_token_bytes``: longer tokens are refused before they are parsed.
    ``token_cache_size``: how many verified tokens are kept (0: none), each until its ``exp``,
    and as many ``Bearer`` headers sent again with one of them, read at once next time.
    ``http_timeout``: seconds for each call to an authorization server (metadata, keys).
    """

    max_token_bytes: int = 16 * 1024
    token_cache_size: int = 10_000
    http_timeout: float = 5.0

    def __post_init__(self) -> None:
        integer("Limits(max_token_bytes=...)", self.max_token_bytes, minimum=64)
        integer("Limits(token_cache_size=...)", self.token_cache_size, minimum=0)
        _set(
            self,
            "http_timeout",
            seconds("Limits(http_timeout=...)", self.http_timeout, positive=True),
        )


def optional_text(name: str, value: object, url: bool = False) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or not value.isprintable():
        raise ConfigurationError(f"{name} must be a non-empty printable string or None")
    if url and not urlsplit(value).scheme:
        raise ConfigurationError(f"{name} must be an absolute URL, got {value!r}")
    return value


@dataclass(frozen=True)
class Metadata:
    """What the resource says of itself: its RFC 9728 document and its challenges.

    ``scopes_supported``, ``resource_name`` and ``resource_documentation`` go in the
    protected-resource metadata (RFC 9728 §2); ``realm`` in every ``WWW-Authenticate``
    challenge (RFC 6750 §3).
    """

    scopes_supported: tuple[str, ...] = ()
    resource_name: str | None = None
    resource_documentation: str | None = None
    realm: str | None = None

    def __post_init__(self) -> None:
        supported = self.scopes_supported
        if isinstance(supported, str):  # a scope string (RFC 6749 §3.3)
            supported = tuple(split_scope(supported))
        supported = strings("Metadata(scopes_supported=...)", supported)
        for scope in supported:  # RFC 9728 §2: scope values, as RFC 6749 §3.3 defines them
            if not is_scope_token(scope):
                raise ConfigurationError(
                    f"Metadata(scopes_supported=...): {scope!r} is not one RFC 6749 scope-token "
                    "(printable ASCII except space, '\"' and '\\')"
                )
        _set(self, "scopes_supported", supported)
        _set(
            self, "resource_name", optional_text("Metadata(resource_name=...)", self.resource_name)
        )
        documentation = optional_text(
            "Metadata(resource_documentation=...)", self.resource_documentation, url=True
        )
        _set(self, "resource_documentation", documentation)
        _set(self, "realm", optional_text("Metadata(realm=...)", self.realm))

    def document_fields(self) -> dict[str, Any]:
        return {
            "scopes_supported": self.scopes_supported,
            "resource_name": self.resource_name,
            "resource_documentation": self.resource_documentation,
        }


def check_resource(resource: object, name: str = "resource") -> str:
    """RFC 9728 §1.2 / RFC 8707 §2: an absolute https URL without a fragment."""
    if not isinstance(resource, str):
        raise ConfigurationError(f"{name} must be a URL string, got {type(resource).__name__}")
    parts = urlsplit(resource)
    if not parts.scheme or not parts.netloc:
        raise ConfigurationError(f"{name} must be an absolute URL, got {resource!r}")
    if parts.fragment or resource.endswith("#"):
        raise ConfigurationError(f"{name} must not have a fragment: {resource!r}")
    if parts.scheme not in ("https", "http"):
        raise ConfigurationError(f"{name} must be an https URL, got {resource!r}")
    if is_insecure(resource) and not insecure_http():
        raise http_refusal(name, resource, issuer_opt_in=False)
    return resource


def resource_identifiers(resource: str, others: Iterable[str]) -> tuple[str, ...]:
    """RFC 9728 §3: every resource one server serves, the default first. Each is served at
    its own path, so no two may share one."""
    served = [resource]
    paths = {urlsplit(resource).path.rstrip("/"): resource}
    for other in others:
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
