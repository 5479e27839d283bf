from typing import Annotated, Any

from fastapi import Depends, FastAPI

from oauthguard import AccessToken, OAuthGuard, require
from oauthguard.fastapi import describe_security

api = FastAPI()
api.add_middleware(
    OAuthGuard,
    resource="https://api.example.com/orders",
    authorization_servers=["https://as.example.com"],
    public_paths=["/docs", "/docs/*", "/openapi.json"],  # Swagger UI stays reachable
)
describe_security(api, client_id="swagger-ui", resource="https://api.example.com/orders")

Writer = Annotated[AccessToken, Depends(require("orders:write"))]


@api.post("/orders")
async def create(token: Writer) -> dict[str, Any]:  # the dependency returns the token
    return {"by": token.subject}
