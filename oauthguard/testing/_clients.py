"""The clients a ``TestIssuer`` knows: registered directly, the origins allowed to call it from
a browser (CORS), and the scopes they may ask for."""

from __future__ import annotations

from collections.abc import Sequence

from oauthguard._wire.tokens import is_scope_token, split_scope
from oauthguard.testing._authserver import GRANT_TYPES, AuthorizationServer, OAuthError
from oauthguard.testing._cors import origin_of


class ClientRegistry:
    """Client registration and CORS origins of a ``TestIssuer``."""

    server: AuthorizationServer
    cors_origins: set[str]
    allowed_scopes: tuple[str, ...] | None

    def register_client(
        self,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        redirect_uris: Sequence[str] = (),
        grant_types: Sequence[str] = GRANT_TYPES,
        auth_method: str = "client_secret_basic",
    ) -> tuple[str, str | None]:
        """Register a client directly (as an administrator would); its id and secret."""
        client = self.server.add_client(
            client_id=client_id,
            secret=client_secret,
            redirect_uris=redirect_uris,
            grant_types=grant_types,
            auth_method=auth_method,
        )
        return client.client_id, client.secret

    def allow_origin(self, url: str) -> str:
        """Let pages of ``url``'s origin call the metadata, JWKS, registration and token
        endpoints from a browser (CORS, for that origin only); the origin."""
        origin = origin_of(url)
        self.cors_origins.add(origin)
        return origin

    def register_swagger_client(
        self,
        app_url: str,
        *,
        client_id: str = "swagger-ui",
        redirect_path: str = "/docs/oauth2-redirect",
    ) -> str:
        """Register Swagger UI of the FastAPI app at ``app_url`` (``describe_security``'s
        ``client_id``): a public client (``auth_method="none"``; PKCE S256, as for every
        client) redirected to ``app_url`` + ``redirect_path`` (FastAPI's
        ``swagger_ui_oauth2_redirect_url``), the app's origin allowed (CORS); its id."""
        self.allow_origin(app_url)
        client_id, _ = self.register_client(
            client_id=client_id,
            redirect_uris=[app_url.rstrip("/") + redirect_path],
            grant_types=("authorization_code",),  # no refresh token: Swagger UI does not use it
            auth_method="none",
        )
        return client_id

    def check_scopes(self, scope: str | None) -> tuple[str, ...]:
        """The scopes of a request, or ``invalid_scope`` when malformed (RFC 6749 §3.3:
        scope-tokens separated by SP) or outside ``allowed_scopes``."""
        items = split_scope(scope) if scope else []
        malformed = [item for item in items if not is_scope_token(item)]
        if malformed:
            raise OAuthError("invalid_scope", f"scope {malformed[0]!r} is malformed")
        scopes = tuple(dict.fromkeys(items))
        if self.allowed_scopes is not None:
            unknown = [s for s in scopes if s not in self.allowed_scopes]
            if unknown:
                raise OAuthError("invalid_scope", f"scope {' '.join(unknown)!r} is not allowed")
        return scopes
