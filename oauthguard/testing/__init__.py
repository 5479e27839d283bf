"""``TestIssuer``: a local authorization server for tests and demos.

It generates keys, serves RFC 8414 metadata, a JWKS, dynamic client registration, an
``/authorize`` endpoint that approves at once, a ``/token`` endpoint and introspection (as an
ASGI app, an ``httpx`` transport, or over uvicorn), and mints access tokens with any claims and
headers, broken ones included.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from oauthguard._verify.jwt import split_jws
from oauthguard.testing._authserver import (
    AUTH_METHODS,
    GRANT_TYPES,
    AuthorizationServer,
)
from oauthguard.testing._clients import ClientRegistry
from oauthguard.testing._cors import AllowRegisteredOrigins
from oauthguard.testing._exchange import ExchangeGrant
from oauthguard.testing._keys import (
    KEY_FACTORIES,
    DPoPKey,
    KeyPool,
    override_members,
    public_jwk,
    sign_jws,
)
from oauthguard.testing._profile import Profile, profile_routes
from oauthguard.testing._profiles import ProviderTokens, profile_of
from oauthguard.testing._shapes import (
    Auth0Profile,
    CognitoProfile,
    EntraProfile,
    KeycloakProfile,
    OktaProfile,
)

__all__ = [
    "Auth0Profile",
    "CognitoProfile",
    "DPoPKey",
    "EntraProfile",
    "KeyPool",
    "KeycloakProfile",
    "OktaProfile",
    "Profile",
    "TestIssuer",
    "public_jwk",
    "sign_jws",
]


class TestIssuer(ProviderTokens, ClientRegistry):
    """A local authorization server: keys, metadata, JWKS, registration, grants, tokens.

    >>> issuer = TestIssuer("https://issuer.test")
    >>> token = issuer.token(audience="https://api.test/mcp", scope="read")

    Its ``app`` serves RFC 8414 metadata, the JWKS, RFC 7591 registration, ``/authorize``
    (approves at once as ``subject``; PKCE S256 required), ``/token`` (authorization_code,
    client_credentials, refresh_token, and RFC 8693 token exchange for the clients
    ``allow_exchange`` names; ``aud`` from RFC 8707 ``resource``; DPoP-bound when a proof is
    sent) and RFC 7662 ``/introspect``. ``allowed_scopes`` limits what may be
    requested (None: anything); ``opaque=True`` issues opaque tokens for introspection.

    ``profile`` (``"auth0"``, ``"entra"``, ``"okta"``, ``"keycloak"``, ``"cognito"`` or a
    ``Profile``) makes it stand in for that identity provider: ``issuer`` is then the
    provider's base (``"http://127.0.0.1:8080"``), the issuer identifier is the provider's
    (``…/realms/test`` for Keycloak, ``…/`` with its slash for Auth0, ``…/{tenant}/v2.0`` for
    Entra, ``…/oauth2/default`` for Okta, ``…/{pool}`` for Cognito), metadata and keys are
    served only at the provider's paths, and ``access_token(...)`` / ``id_token(...)`` mint
    tokens shaped like the provider's (header, claims, audiences, where scopes and roles
    live). Test an app with the matching ``oauthguard.providers`` preset:

    >>> issuer = TestIssuer("http://127.0.0.1:8080", profile="keycloak")
    >>> kc = providers.keycloak("http://127.0.0.1:8080", realm="test", client_id="orders-api")
    >>> token = issuer.access_token(scopes=["orders:read"], roles=["clerk"])

    Pages of the origins in ``cors_origins`` (``allow_origin``) may call its metadata, JWKS,
    registration and token endpoints from a browser (CORS).
    """

    __test__ = False  # not a pytest test class
    #: Where issuers built without ``key_pool`` take their keys (None: each makes its own).
    default_key_pool: ClassVar[KeyPool | None] = None

    def __init__(
        self,
        issuer: str = "https://issuer.test",
        *,
        algorithms: tuple[str, ...] = ("RS256", "ES256", "EdDSA"),
        jwks_max_age: int | None = 300,
        allowed_scopes: Iterable[str] | None = None,
        opaque: bool = False,
        token_lifetime: float = 300,
        subject: str = "user-1",
        token_alg: str = "RS256",
        clock: Callable[[], float] = time.time,
        key_pool: KeyPool | None = None,
        profile: str | Profile | None = None,
    ) -> None:
        #: The provider this issuer stands in for (None: a plain RFC 8414 issuer).
        self.profile = None if profile is None else profile_of(profile)
        #: The base URL the issuer is served at (the issuer itself without a profile).
        self.base_url = issuer.rstrip("/")
        self.issuer = issuer if self.profile is None else self.profile.issuer(self.base_url)
        self.key_pool = key_pool or TestIssuer.default_key_pool
        self.jwks_max_age = jwks_max_age
        self.allowed_scopes = None if allowed_scopes is None else tuple(allowed_scopes)
        self.opaque = opaque
        self.token_lifetime = token_lifetime
        self.subject = subject
        self.token_alg = token_alg
        self.clock = clock
        self.keys: dict[str, tuple[str, Any]] = {}  # kid -> (alg, private key)
        self.default_kid: dict[str, str] = {}  # alg -> kid
        self.requests: list[httpx.Request] = []
        #: Paths of the metadata and JWKS requests served, however they arrived (the last 1,000).
        self.served: deque[str] = deque(maxlen=1000)
        self.extra_metadata: dict[str, Any] = {}
        #: Raw JWKs served after the issuer's own keys (for broken or foreign keys).
        self.extra_jwks: list[dict[str, Any]] = []
        #: Origins whose pages may call the issuer from a browser (``allow_origin``).
        self.cors_origins: set[str] = set()
        for alg in algorithms:
            self.add_key(alg)
        self.encryption_key = self.add_encryption_key() if self.profile is not None else None
        self.server = AuthorizationServer(self)
        #: The token-exchange grant and each client's policy (``allow_exchange``).
        self.exchanges = ExchangeGrant(self.issuer, self.keys, self.server.issued, self.clock)
        prefix = urlsplit(self.issuer).path.rstrip("/")
        documents = [
            Route(self.metadata_path, self._metadata_endpoint),
            Route(self.oidc_path, self._metadata_endpoint),
            Route(self.jwks_path, self._jwks_endpoint),
        ]
        if self.profile is not None:
            documents = profile_routes(self.profile, self._metadata_endpoint, self._jwks_endpoint)
        cors_paths = (*(route.path for route in documents), prefix + "/register", prefix + "/token")
        self.app = Starlette(
            routes=[*documents, *self.server.routes(prefix)],
            middleware=[
                Middleware(AllowRegisteredOrigins, origins=self.cors_origins, paths=cors_paths)
            ],
        )

    # -- keys -----------------------------------------------------------------------------
    def add_key(self, alg: str, kid: str | None = None) -> str:
        """Generate a key for ``alg``, make it the default for that algorithm; its kid."""
        kid = kid or f"{alg.lower()}-{uuid.uuid4().hex[:8]}"
        key = self.key_pool.key(alg) if self.key_pool is not None else KEY_FACTORIES[alg]()
        self.keys[kid] = (alg, key)
        self.default_kid[alg] = kid
        return kid

    def rotate(self, alg: str = "RS256") -> str:
        """Replace the default key of ``alg`` with a new one (the old one leaves the JWKS)."""
        old = self.default_kid.get(alg)
        kid = self.add_key(alg)
        if old is not None:
            del self.keys[old]
        return kid

    def jwks(self) -> dict[str, Any]:
        """The JWKS document: the public keys, then ``extra_jwks`` as they are."""
        own = [public_jwk(key, kid, alg) for kid, (alg, key) in self.keys.items()]
        return {"keys": own + list(self.extra_jwks)}

    # -- metadata -------------------------------------------------------------------------
    @property
    def base(self) -> str:
        return self.issuer.rstrip("/")

    @property
    def metadata_path(self) -> str:
        return "/.well-known/oauth-authorization-server" + urlsplit(self.issuer).path.rstrip("/")

    @property
    def oidc_path(self) -> str:
        """OpenID Connect Discovery §4: the well-known segment appended to the issuer."""
        from urllib.parse import urlsplit

        return urlsplit(self.issuer).path.rstrip("/") + "/.well-known/openid-configuration"

    @property
    def jwks_path(self) -> str:
        return urlsplit(self.issuer).path.rstrip("/") + "/jwks"

    @property
    def jwks_uri(self) -> str:
        if self.profile is not None:
            return self.base_url + self.profile.jwks_paths()[0].format(**vars(self.profile))
        return self.base + "/jwks"

    def metadata(self) -> dict[str, Any]:
        """RFC 8414 §2 metadata of this issuer; ``extra_metadata`` overrides or, with None,
        removes members."""
        metadata = {
            "issuer": self.issuer,
            "jwks_uri": self.jwks_uri,
            "token_endpoint": self.base + "/token",
            "authorization_endpoint": self.base + "/authorize",
            "registration_endpoint": self.base + "/register",
            "introspection_endpoint": self.base + "/introspect",
            "response_types_supported": ["code"],
            "grant_types_supported": list(GRANT_TYPES),
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
            "introspection_endpoint_auth_methods_supported": list(AUTH_METHODS[:2]),
            "authorization_response_iss_parameter_supported": True,
            "dpop_signing_alg_values_supported": ["RS256", "PS256", "ES256", "EdDSA"],
            **(
                {"scopes_supported": list(self.allowed_scopes)}
                if self.allowed_scopes is not None
                else {}
            ),
            **self.extra_metadata,
        }
        return {name: value for name, value in metadata.items() if value is not None}

    async def _metadata_endpoint(self, request: Request) -> Response:
        self.served.append(request.url.path)
        metadata = self.metadata()
        if self.profile is not None:  # Entra: the document of the tenant in the path
            metadata["issuer"] = self.profile.issuer_at(self.base_url, request.path_params)
        return JSONResponse(metadata)

    async def _jwks_endpoint(self, request: Request) -> Response:
        self.served.append(request.url.path)
        headers = {}
        if self.jwks_max_age is not None:
            headers["cache-control"] = f"public, max-age={self.jwks_max_age}"
        return JSONResponse(self.jwks(), headers=headers)

    # -- transport ------------------------------------------------------------------------
    def transport(self) -> httpx.AsyncBaseTransport:
        """An ``httpx`` transport that answers this issuer's URLs in-process.

        Every request is recorded in ``self.requests``.
        """
        inner = httpx.ASGITransport(app=self.app)
        issuer = self

        class _Recording(httpx.AsyncBaseTransport):
            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                issuer.requests.append(request)
                return await inner.handle_async_request(request)

        return _Recording()

    def http_client(self) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` that reaches this issuer in-process."""
        return httpx.AsyncClient(transport=self.transport())

    # -- tokens ---------------------------------------------------------------------------
    def token(
        self,
        *,
        subject: str = "user-1",
        audience: str | list[str] | None = None,
        scope: str | None = None,
        expires_in: float = 300,
        alg: str = "RS256",
        kid: str | None = None,
        claims: Mapping[str, Any] | None = None,
        headers: Mapping[str, Any] | None = None,
        now: float | None = None,
        jkt: str | None = None,
    ) -> str:
        """A signed access token. ``claims``/``headers`` override or, with None, remove.

        ``jkt`` binds it to a DPoP key (``cnf.jkt``, RFC 9449 §6.1): ``DPoPKey().thumbprint``.
        """
        now = self.clock() if now is None else now
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "client_id": "test-client",
            "iat": int(now),
            "exp": int(now + expires_in),
            "jti": uuid.uuid4().hex,
        }
        if audience is not None:
            payload["aud"] = audience
        if scope is not None:
            payload["scope"] = scope
        if jkt is not None:
            payload["cnf"] = {"jkt": jkt}
        if kid is None and alg not in self.default_kid:
            raise ValueError(
                f"this issuer has no {alg} key; TestIssuer(algorithms=...) or "
                f"add_key({alg!r}) makes one"
            )
        kid = kid or self.default_kid[alg]
        header: dict[str, Any] = {"alg": alg, "typ": "at+jwt", "kid": kid}
        override_members(payload, claims)
        override_members(header, headers)
        _, key = self.keys[kid] if kid in self.keys else self.keys[self.default_kid[alg]]
        return sign_jws(header, payload, key, alg)

    def private_key(self, alg: str = "RS256") -> Any:
        return self.keys[self.default_kid[alg]][1]

    def opaque_token(
        self,
        *,
        subject: str = "user-1",
        audience: str | list[str] | None = None,
        scope: str | None = None,
        expires_in: float = 300,
        claims: Mapping[str, Any] | None = None,
        now: float | None = None,
    ) -> str:
        """A random token whose claims only ``/introspect`` reveals (RFC 7662 §2.2)."""
        now = self.clock() if now is None else now
        data: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "client_id": "test-client",
            "iat": int(now),
            "exp": int(now + expires_in),
        }
        if audience is not None:
            data["aud"] = audience
        if scope is not None:
            data["scope"] = scope
        for name, value in (claims or {}).items():
            if value is None:
                data.pop(name, None)
            else:
                data[name] = value
        token = secrets.token_urlsafe(32)
        self.server.remember(token, data)
        return token

    # -- the authorization server ---------------------------------------------------------
    def issue(
        self,
        subject: str,
        client_id: str,
        scopes: Sequence[str],
        resources: Sequence[str],
        jkt: str | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> str:
        """The access token for a grant: ``aud`` from the RFC 8707 resources, ``cnf.jkt``
        for a DPoP-bound one (RFC 9449 §6), ``claims`` added (an exchange's ``act``);
        remembered for introspection."""
        audience = resources[0] if len(resources) == 1 else list(resources) or None
        extra = {**(claims or {}), **({"cnf": {"jkt": jkt}} if jkt is not None else {})}
        claims = {"client_id": client_id, **extra}
        scope = " ".join(scopes) or None
        now = self.clock()
        if self.opaque:
            return self.opaque_token(
                subject=subject,
                audience=audience,
                scope=scope,
                expires_in=self.token_lifetime,
                claims=claims,
                now=now,
            )
        if self.profile is not None:  # shaped like the provider's; cnf.jkt kept
            token = self.access_token(
                subject=subject,
                scopes=scopes,
                audience=audience,
                client_id=client_id,
                expires_in=self.token_lifetime,
                claims={"cnf": None, **extra},
                now=now,
            )
        else:
            token = self.token(
                subject=subject,
                audience=audience,
                scope=scope,
                claims=claims,
                expires_in=self.token_lifetime,
                alg=self.token_alg,
                now=now,
            )
        _, payload, _, _ = split_jws(token)
        self.server.remember(token, payload)
        return token
