"""The clients a ``TestIssuer`` knows: registered directly, the origins allowed to call it from
a browser (CORS), and the scopes they may ask for."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from starlette.datastructures import FormData

from oauthguard._wire.tokens import is_scope_token, split_scope
from oauthguard.testing._authserver import (
    GRANT_TYPES,
    AuthorizationServer,
    Client,
    Grant,
)
from oauthguard.testing._checks import OAuthError
from oauthguard.testing._cors import origin_of
from oauthguard.testing._exchange import ExchangeGrant


class ClientRegistry:
    """Client registration, CORS origins and token-exchange policies of a ``TestIssuer``."""

    server: AuthorizationServer
    cors_origins: set[str]
    allowed_scopes: tuple[str, ...] | None
    exchanges: ExchangeGrant

    def allow_exchange(
        self,
        client_id: str,
        *,
        targets: str | Iterable[str],
        scopes: str | Iterable[str] | None = None,
        delegation: bool = True,
    ) -> None:
        """Let ``client_id`` exchange tokens (RFC 8693) for ``targets`` (resources or
        audiences) with ``scopes`` (None: any); ``delegation``: the issued tokens name it
        (or the subject of its actor token) as the actor (``act``, RFC 8693 §4.1). Other
        targets are ``invalid_target``, other scopes ``invalid_scope``, a client without a
        policy ``unauthorized_client``."""
        self.exchanges.allow(
            client_id,
            [targets] if isinstance(targets, str) else targets,
            split_scope(scopes) if isinstance(scopes, str) else scopes,
            delegation,
        )

    def exchange_grant(self, client: Client, form: FormData) -> Grant:
        """The grant of a token-exchange request (for the token endpoint)."""
        return self.exchanges.grant(client, form)

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
