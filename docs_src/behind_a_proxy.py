from starlette.applications import Starlette

from oauthguard import DPoP, OAuthGuard, ResourceServer

server = ResourceServer(
    resource="https://api.example.com/orders",
    authorization_servers=["https://as.example.com"],
    dpop=DPoP(
        trusted_proxies=["10.0.0.0/8"],  # X-Forwarded-* and Forwarded believed only from these
        public_origin="https://api.example.com",  # or pin the origin: proofs name this one
    ),
)
app = OAuthGuard(Starlette(routes=[]), server)
