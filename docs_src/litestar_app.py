from typing import Any

from litestar import Litestar, Request, get

from oauthguard import GuardError, OAuthGuard, ResourceServer
from oauthguard.litestar import refusal_response, requires


@get("/orders", guards=[requires("orders:read")])
async def orders(request: Request[Any, Any, Any]) -> dict[str, str]:
    return {"by": request.auth.subject}  # Litestar reads scope["auth"] itself


server = ResourceServer(
    resource="https://api.example.com/orders",
    authorization_servers=["https://as.example.com"],
)
app = OAuthGuard(Litestar([orders], exception_handlers={GuardError: refusal_response}), server)
