import os

from starlette.applications import Starlette

from oauthguard import DPoP, DPoPNonces, OAuthGuard, ResourceServer
from oauthguard.redis import RedisReplayStore  # pip install 'oauthguard[redis]'

server = ResourceServer(
    resource="https://api.example.com/orders",
    authorization_servers=["https://as.example.com"],
    dpop=DPoP(
        mode="required",
        # The same secret in every worker and host: any of them accepts the nonces.
        nonces=DPoPNonces(secret=os.environ["DPOP_NONCE_SECRET"], lifetime=300),
        # One replay store for all of them: a proof is accepted once, wherever it is sent.
        replay_store=RedisReplayStore.from_url(os.environ["REDIS_URL"]),
    ),
)
app = OAuthGuard(Starlette(routes=[]), server)
