"""What ``require(...)`` shows FastAPI: the parameters it injects, and the guard's OAuth 2
scheme in the OpenAPI document. Imported only when FastAPI asks for a requirement's
signature, so apps without FastAPI never import it."""

from __future__ import annotations

import inspect
from collections.abc import Iterable

from fastapi import Security
from fastapi.openapi.models import OAuthFlows
from fastapi.security import OAuth2, SecurityScopes
from starlette.requests import HTTPConnection

from oauthguard._wire.tokens import AccessToken

SCHEME_NAME = "OAuth2"


class GuardScheme(OAuth2):
    """The guard's OAuth 2 scheme as FastAPI sees it.

    It only documents: FastAPI lists each operation's scopes under it in OpenAPI. The
    guard in front of the app checks the token, and ``require(...)`` the operation's needs.
    """

    def __init__(self) -> None:
        super().__init__(flows=OAuthFlows(), scheme_name=SCHEME_NAME, auto_error=False)

    async def __call__(self, connection: HTTPConnection) -> None:
        return None


scheme = GuardScheme()


def dependency_signature(documented: Iterable[str]) -> inspect.Signature:
    """What FastAPI injects into ``require(...)``: the connection, the security scopes of
    the operation, and the scheme (with the ``documented`` scopes, for OpenAPI)."""
    positional = inspect.Parameter.POSITIONAL_OR_KEYWORD
    return inspect.Signature(
        [
            inspect.Parameter("connection", positional, annotation=HTTPConnection),
            inspect.Parameter("security_scopes", positional, annotation=SecurityScopes),
            inspect.Parameter(
                "oauth2_scheme",
                inspect.Parameter.KEYWORD_ONLY,
                annotation=None,
                default=Security(scheme, scopes=list(documented)),
            ),
        ],
        return_annotation=AccessToken,
    )
