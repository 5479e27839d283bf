from starlette.applications import Starlette

from oauthguard import JWT, DPoP, Issuer, Limits, Metadata, OAuthGuard, ResourceServer, require

server = ResourceServer(
    resource="https://api.example.com/orders",  # this API's identifier (RFC 8707)
    authorization_servers=[  # URLs, or Issuer(...) for what differs per issuer
        "https://as.example.com",
        Issuer(
            "https://kc.example.com/realms/demo",
            audiences=("orders-api",),
            clients=("orders-api",),
            roles_claims=("realm_access.roles", "resource_access.orders-api.roles"),
        ),
    ],
    audiences=None,  # aud values accepted instead of `resource`
    resources=(),  # other resources served beside it, each on its own path
    jwt=JWT(algorithms=("RS256", "ES256"), leeway=30, strict_typ=False),
    dpop=DPoP(mode="allowed", max_age=60, trusted_proxies=["10.0.0.0/8"]),  # or "required"
    introspection=None,  # Introspection(client_id=..., ...) for opaque tokens
    verifier=None,  # any TokenVerifier instead of JWT / introspection
    limits=Limits(max_token_bytes=16384, token_cache_size=10_000, http_timeout=5.0),
    http_client=None,  # injected collaborators
    clock=None,
    user_factory=None,  # (token, raw) -> request.user, built once per token
)
app = OAuthGuard(
    Starlette(routes=[]),
    server,
    rules={"/admin": require("admin")},  # path rules (whole-segment prefixes)
    public_paths=["/health", "/docs", "/docs/*"],
    scope_implies={"admin": {"read", "write"}},
    metadata=Metadata(resource_name="Orders", scopes_supported=("orders:read",)),
)
