from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Security

from oauthguard import AccessToken, OAuthGuard, require

api = FastAPI()
api.add_middleware(
    OAuthGuard,
    resource="https://api.example.com/orders",
    authorization_servers=["https://as.example.com"],
)


Auditor = Annotated[AccessToken, Security(require("reports"), scopes=["audit"])]


@api.get("/reports")
def reports(token: Auditor) -> Any:
    return {"by": token.subject}  # needs "reports" and "audit"


v1 = APIRouter(dependencies=[Depends(require("v1"))])  # every route of the router needs "v1"


@v1.get("/v1/orders")
def orders() -> Any:
    return []


api.include_router(v1)
