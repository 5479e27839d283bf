import os

from starlette.applications import Starlette

from oauthguard import DPoP, DPoPNonces, OAuthGuard, ResourceServer
from oauthguard.redis import RedisReplayStore  # pip install 'oauthguard[redis]'

server = ResourceServer(
    resource="https://api.example.com/mcp",
    authorization_servers=["https://as.example.com"],
    dpop=DPoP(
        mode="required",  # "allowed" (the default) | "required" | "disabled"
        nonces=DPoPNonces(secret=os.environ["DPOP_NONCE_SECRET"], lifetime=300),
        replay_store=RedisReplayStore.from_url(os.environ["REDIS_URL"]),
        trusted_proxies=["10.0.0.0/8"],
    ),
)
app = OAuthGuard(Starlette(routes=[]), server)
