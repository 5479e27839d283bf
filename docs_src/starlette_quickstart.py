from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from oauthguard import OAuthGuard, require


@require("orders:read")  # a token without this scope gets 403 insufficient_scope
async def orders(request: Request) -> JSONResponse:
    return JSONResponse({"reader": request.auth.subject})  # request.auth: the AccessToken


app = Starlette(routes=[Route("/orders", orders)])
app.add_middleware(
    OAuthGuard,
    resource="https://api.example.com/orders",  # this API's identifier (RFC 8707 / RFC 9728)
    authorization_servers=["https://as.example.com"],  # issuers whose tokens it accepts
)
