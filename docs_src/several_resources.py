from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from oauthguard import OAuthGuard, ResourceServer, require


async def whoami(request: Request) -> JSONResponse:
    return JSONResponse({"subject": request.auth.subject})


server = ResourceServer(
    resource="https://api.example.com/mcp",
    authorization_servers=["https://as.example.com"],
    resources=[  # served beside it, each on its own path
        "https://api.example.com/billing",
        "https://api.example.com/reports",
    ],
)
app = OAuthGuard(
    Starlette(routes=[Route(path, whoami) for path in ("/mcp", "/billing", "/stats")]),
    server,
    rules={"/stats": require(audience="https://api.example.com/reports")},
)
