from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from oauthguard import OAuthGuard, require


@require("payments:write", acr_values="urn:example:mfa", max_age=300)
async def transfer(request: Request) -> JSONResponse:
    return JSONResponse({"by": request.auth.subject})


app = Starlette(routes=[Route("/transfer", transfer, methods=["POST"])])
app.add_middleware(
    OAuthGuard,
    resource="https://api.example.com/payments",
    authorization_servers=["https://as.example.com"],
)
