"""FastAPI integration: ``Depends(require(...))`` and the OpenAPI OAuth 2 security scheme.

Importable only when FastAPI is installed. ``require(...)`` objects are FastAPI dependencies
by themselves; ``describe_security(app)`` makes the OpenAPI document show the guard's
authorization server (authorization code flow) so Swagger UI's "Authorize" works.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import FastAPI
from starlette.routing import Route

from oauthguard._asgi.context import context_of
from oauthguard._asgi.dependency import SCHEME_NAME, GuardScheme
from oauthguard._asgi.types import Receive, Scope, Send
from oauthguard._wire.errors import ConfigurationError, GuardError

__all__ = ["SCHEME_NAME", "GuardScheme", "describe_security"]

logger = logging.getLogger("oauthguard")


def oauth2_flows(metadata: Mapping[str, Any], scopes: Iterable[str]) -> dict[str, Any]:
    """OpenAPI 3 ``flows`` from RFC 8414 authorization server metadata."""
    scope_map = {scope: "" for scope in sorted(set(scopes))}
    authorize = metadata.get("authorization_endpoint")
    token = metadata.get("token_endpoint")
    if isinstance(authorize, str) and isinstance(token, str):
        return {
            "authorizationCode": {
                "authorizationUrl": authorize,
                "tokenUrl": token,
                "scopes": scope_map,
            }
        }
    if isinstance(token, str):
        return {"clientCredentials": {"tokenUrl": token, "scopes": scope_map}}
    logger.warning(
        "the metadata of %s has no token_endpoint; OpenAPI shows no OAuth 2 flow",
        metadata.get("issuer"),
    )
    return {}


def operation_scopes(schema: Mapping[str, Any]) -> set[str]:
    """Every scope an operation of the document lists under the guard's scheme."""
    found: set[str] = set()
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            for requirement in operation.get("security", ()) if isinstance(operation, dict) else ():
                found.update(requirement.get(SCHEME_NAME, ()))
    return found


class OpenAPIWithOAuth2:
    """An app's OpenAPI document, with the guard's scheme filled in from its issuer."""

    def __init__(self, app: FastAPI, route: Route) -> None:
        self.app = app
        self.build = app.openapi
        self.serve_document = route.app
        self.metadata: Mapping[str, Any] | None = None
        self.scopes_supported: tuple[str, ...] = ()

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The OpenAPI route: discover the issuer's metadata once, then serve the document."""
        context = context_of(scope, "describe_security")
        if self.metadata is None:
            server = context.server
            try:
                metadata = await server.servers.get(server.issuers[0].url)
            except GuardError as error:
                await context.refuse(scope, receive, send, error)
                return
            self.metadata = metadata
            self.scopes_supported = context.metadata.scopes_supported
        await self.serve_document(scope, receive, send)

    def openapi(self) -> dict[str, Any]:
        """FastAPI's document plus the scheme's flows; cached only once they are known."""
        if self.app.openapi_schema is not None:
            return self.app.openapi_schema
        schema = self.build()
        if self.metadata is None:  # asked for outside a request, before discovery
            self.app.openapi_schema = None
            return schema
        scopes = operation_scopes(schema) | set(self.scopes_supported)
        schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
        schemes[SCHEME_NAME] = {"type": "oauth2", "flows": oauth2_flows(self.metadata, scopes)}
        return schema


#: What Swagger UI puts in every authorization request itself; an extra parameter of the same
#: name would send it twice (RFC 6749 §3.1: a parameter MUST NOT be included more than once).
SWAGGER_OWN_PARAMETERS = frozenset(
    {
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "realm",
        "code_challenge",
        "code_challenge_method",
    }
)


def describe_security(
    app: FastAPI,
    *,
    client_id: str | None = None,
    resource: str | None = None,
    authorization_params: Mapping[str, str] | None = None,
) -> None:
    """Show the guard's authorization server in ``app``'s OpenAPI document.

    The scheme's ``authorizationUrl`` and ``tokenUrl`` come from the metadata of the guard's
    first authorization server, fetched (once) when ``/openapi.json`` is first requested;
    each operation lists the scopes its ``require(...)`` needs. Swagger UI is set up for the
    authorization code flow with PKCE, with ``client_id`` filled in.

    ``resource`` sends the RFC 8707 ``resource`` parameter, and ``authorization_params`` any
    other parameter the authorization server needs, such as Auth0's ``audience`` (Swagger
    UI's ``additionalQueryStringParams``: it adds them to the authorization request and to
    the token endpoint's URL). Keep ``/docs``, ``/docs/*`` and ``/openapi.json`` in the guard's
    ``public_paths``.
    """
    route = next(
        (r for r in app.router.routes if isinstance(r, Route) and r.path == app.openapi_url), None
    )
    if route is None:
        raise ConfigurationError(
            "describe_security needs the app's OpenAPI route (FastAPI(openapi_url=...) is None)"
        )
    extra = authorization_query(resource, authorization_params)
    document = OpenAPIWithOAuth2(app, route)
    route.app = document.serve
    app.openapi = document.openapi  # type: ignore[method-assign]
    init = dict(app.swagger_ui_init_oauth or {})
    init.setdefault("usePkceWithAuthorizationCodeGrant", True)
    if client_id is not None:
        init.setdefault("clientId", client_id)
    if extra:  # what the app set itself wins
        init["additionalQueryStringParams"] = {
            **extra,
            **init.get("additionalQueryStringParams", {}),
        }
    app.swagger_ui_init_oauth = init


def authorization_query(
    resource: str | None, authorization_params: Mapping[str, str] | None
) -> dict[str, str]:
    """The extra parameters of Swagger UI's authorization request, checked."""
    extra = dict(authorization_params or {})
    for name, value in extra.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise ConfigurationError(
                f"describe_security(authorization_params=...): {name!r} must map a string "
                "to a string"
            )
        if name in SWAGGER_OWN_PARAMETERS:
            raise ConfigurationError(
                f"describe_security(authorization_params=...): Swagger UI sends {name!r} "
                "itself; remove it from there"
            )
    if resource is not None:
        if extra.get("resource", resource) != resource:
            raise ConfigurationError(
                "describe_security: resource and authorization_params['resource'] differ; "
                "pass one of them"
            )
        extra["resource"] = resource
    return extra
