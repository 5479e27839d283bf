import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from oauthguard import Introspection, OAuthGuard, ResourceServer


async def whoami(request: Request) -> JSONResponse:
    return JSONResponse({"subject": request.auth.subject})


server = ResourceServer(
    resource="https://api.example.com/orders",
    authorization_servers=["https://as.example.com"],
    introspection=Introspection(
        client_id="orders-api",  # the resource server's own client at the authorization server
        client_secret=os.environ["INTROSPECTION_SECRET"],
    ),
)
app = OAuthGuard(Starlette(routes=[Route("/orders", whoami)]), server)
