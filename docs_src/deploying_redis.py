import os

from starlette.applications import Starlette

from oauthguard import JWT, DPoP, DPoPNonces, Introspection, OAuthGuard, ResourceServer
from oauthguard.redis import RedisIntrospectionCache, RedisReplayStore  # '.[redis]'

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
    # JWTs are checked here; other (opaque) tokens are introspected once for the fleet.
    introspection=Introspection(
        client_id="orders-api",
        client_secret=os.environ["INTROSPECTION_SECRET"],
        shared_cache=RedisIntrospectionCache.from_url(
            os.environ["REDIS_URL"],
            # Entries are signed: one written by anyone without the secret is never read.
            secret=os.environ["INTROSPECTION_CACHE_SECRET"],
        ),
    ),
    # Exit at startup (uvicorn: status 3) rather than serve 503s when no keys can be had.
    jwt=JWT(require_keys_at_startup=True),
)
# GET /ready: 200 once the keys are in hand, 503 before; for the orchestrator's probe.
app = OAuthGuard(Starlette(routes=[]), server, readiness_path="/ready")
