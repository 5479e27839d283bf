from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from oauthguard import OAuthGuard, require


async def whoami(request: Request) -> JSONResponse:
    return JSONResponse({"subject": request.auth.subject})


app = Starlette(
    routes=[
        Route("/orders", whoami, methods=["GET", "POST"]),
        Mount("/admin", routes=[Route("/users", whoami)]),  # an app you cannot decorate
    ]
)
app.add_middleware(
    OAuthGuard,
    resource="https://api.example.com/orders",
    authorization_servers=["https://as.example.com"],
    rules={
        "/admin": require("admin"),  # whole segments: /admin and /admin/users, not /administer
        ("POST", "/orders"): require("orders:write"),  # a rule for a method beats one without
        "/orders": require("orders:read"),
    },
)
