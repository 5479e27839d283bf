from starlette.applications import Starlette
from starlette.endpoints import HTTPEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from oauthguard import OAuthGuard, require


@require("orders:write")  # async or sync function endpoints
async def create_order(request: Request) -> JSONResponse:
    return JSONResponse({"by": request.auth.subject})


class Orders(HTTPEndpoint):
    @require("orders:read")  # HTTPEndpoint methods
    async def get(self, request: Request) -> JSONResponse:
        return JSONResponse({"reader": request.auth.subject})


@require("admin")  # a whole HTTPEndpoint or WebSocketEndpoint class, or any ASGI app
class Admin(HTTPEndpoint):
    async def get(self, request: Request) -> JSONResponse:
        return JSONResponse({"admin": request.auth.subject})


@require("chat")  # WebSocket endpoints: refused before accept
async def chat(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(f"hello {websocket.auth.subject}")
    await websocket.close()


app = Starlette(
    routes=[
        Route("/orders/new", create_order, methods=["POST"]),
        Route("/orders", Orders),
        Route("/admin", Admin),
        WebSocketRoute("/chat", chat),
    ]
)
app.add_middleware(
    OAuthGuard,
    resource="https://api.example.com/orders",
    authorization_servers=["https://as.example.com"],
)
