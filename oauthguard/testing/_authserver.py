"""The authorization-server endpoints of ``TestIssuer``, for tests and demos.

RFC 7591 registration; RFC 6749 §4.1 / §4.4 / §6 grants with RFC 7636 PKCE (S256 only), and
RFC 8693 token exchange (``_exchange.py``);
RFC 8707 resource indicators; RFC 9207 ``iss`` in the authorization response; RFC 9449 §5
DPoP-bound tokens; RFC 7662 introspection. Every authorization request is approved at once.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from oauthguard._wire.tokens import split_scope
from oauthguard.testing._checks import (
    OAuthError,
    check_dpop_proof,
    check_pkce,
    check_resources,
    narrow,
)


class Issuing(Protocol):
    """What the endpoints need of the issuer they serve (``TestIssuer``)."""

    issuer: str
    subject: str
    token_lifetime: float

    @property
    def base(self) -> str: ...

    def clock(self) -> float: ...

    def check_scopes(self, scope: str | None) -> tuple[str, ...]: ...

    def issue(
        self,
        subject: str,
        client_id: str,
        scopes: Sequence[str],
        resources: Sequence[str],
        jkt: str | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> str: ...

    def exchange_grant(self, client: Client, form: FormData) -> Grant: ...


AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")
GRANT_TYPES = (
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "urn:ietf:params:oauth:grant-type:token-exchange",  # RFC 8693, see _exchange.py
)
CODE_LIFETIME = 60.0
#: Bounds on what anyone may make the issuer keep: clients, unredeemed codes.
MAX_CLIENTS = 1000
MAX_CODES = 1000
MAX_ISSUED = 10_000


MAX_FORM_BYTES = 64 * 1024


async def read_form(request: Request) -> FormData:
    """An application/x-www-form-urlencoded body (RFC 6749 §B), read with the standard library.

    Starlette's own form parser needs python-multipart, which a resource server has no use for.
    A body of any other type, or over 64 KiB, reads as an empty form, so the grant fails with
    ``invalid_request`` as it would without its parameters.
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return FormData()
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return FormData()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return FormData()
    fields: list[tuple[str, str | UploadFile]] = list(parse_qsl(text, keep_blank_values=True))
    return FormData(fields)


@dataclass(frozen=True)
class Client:
    """A registered client."""

    client_id: str
    secret: str | None
    redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]
    auth_method: str


@dataclass(frozen=True)
class Grant:
    """What an authorization code or a refresh token stands for."""

    client_id: str
    subject: str
    scopes: tuple[str, ...]
    resources: tuple[str, ...]
    redirect_uri: str | None = None
    code_challenge: str | None = None
    expires_at: float = float("inf")
    #: Claims the issued token carries beside the usual ones (``act`` of an exchange).
    claims: Mapping[str, Any] = field(default_factory=dict)


class AuthorizationServer:
    """Registration, authorization, token and introspection endpoints of one ``TestIssuer``."""

    def __init__(self, issuer: Issuing) -> None:
        self.issuer = issuer
        self.clients: dict[str, Client] = {}
        self.codes: dict[str, Grant] = {}
        self.refresh_tokens: dict[str, Grant] = {}
        #: Tokens issued, with what introspection says about them (bounded, oldest dropped).
        self.issued: dict[str, dict[str, Any]] = {}

    def routes(self, prefix: str) -> list[Route]:
        return [
            Route(prefix + "/register", self.register, methods=["POST"]),
            Route(prefix + "/authorize", self.authorize, methods=["GET"]),
            Route(prefix + "/token", self.token, methods=["POST"]),
            Route(prefix + "/introspect", self.introspect, methods=["POST"]),
        ]

    def add_client(
        self,
        *,
        client_id: str | None = None,
        secret: str | None = None,
        redirect_uris: Sequence[str] = (),
        grant_types: Sequence[str] = GRANT_TYPES,
        auth_method: str = "client_secret_basic",
    ) -> Client:
        if auth_method not in AUTH_METHODS:
            raise ValueError(f"auth_method must be one of {AUTH_METHODS}")
        if auth_method != "none" and secret is None:
            secret = secrets.token_urlsafe(24)
        client = Client(
            client_id or secrets.token_urlsafe(12),
            None if auth_method == "none" else secret,
            tuple(redirect_uris),
            tuple(grant_types),
            auth_method,
        )
        self.clients[client.client_id] = client
        return client

    def remember(self, token: str, claims: dict[str, Any]) -> None:
        """Keep what introspection will answer for ``token``."""
        while len(self.issued) >= MAX_ISSUED:
            del self.issued[next(iter(self.issued))]
        self.issued[token] = claims

    # -- RFC 7591 -------------------------------------------------------------------------
    async def register(self, request: Request) -> Response:
        # JSON only (RFC 7591 §3.1): a page elsewhere can post text/plain without asking
        # first (CORS), and would register clients by the thousand.
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return OAuthError("invalid_client_metadata", "the body must be JSON").response()
        if len(self.clients) >= MAX_CLIENTS:  # registration is open to anyone: a bound
            return OAuthError("invalid_client_metadata", "too many clients registered").response()
        try:
            body = await request.json()
            client = self._register(body if isinstance(body, dict) else None)
        except OAuthError as error:
            return error.response()
        except ValueError:
            return OAuthError("invalid_client_metadata", "the body is not JSON").response()
        answer = {
            **body,
            "client_id": client.client_id,
            "client_id_issued_at": int(self.issuer.clock()),
            "token_endpoint_auth_method": client.auth_method,
            "grant_types": list(client.grant_types),
        }
        if client.secret is not None:
            answer.update(client_secret=client.secret, client_secret_expires_at=0)
        return JSONResponse(answer, status_code=201, headers={"cache-control": "no-store"})

    def _register(self, body: dict[str, Any] | None) -> Client:
        """RFC 7591 §2-3: check the client's metadata; errors per §3.2.2."""
        if body is None:
            raise OAuthError("invalid_client_metadata", "the body must be a JSON object")
        method = body.get("token_endpoint_auth_method") or "client_secret_basic"
        grants = body.get("grant_types") or ["authorization_code"]
        uris = body.get("redirect_uris") or []
        if method not in AUTH_METHODS:
            raise OAuthError("invalid_client_metadata", f"unsupported auth method {method!r}")
        if not isinstance(grants, list) or not set(grants) <= set(GRANT_TYPES):
            raise OAuthError("invalid_client_metadata", "unsupported grant_types")
        if not isinstance(uris, list) or ("authorization_code" in grants and not uris):
            raise OAuthError("invalid_redirect_uri", "redirect_uris are required")
        for uri in uris:
            parts = urlsplit(uri) if isinstance(uri, str) else None
            if parts is None or not parts.scheme or parts.fragment or "#" in uri:
                raise OAuthError("invalid_redirect_uri", f"{uri!r} is not an absolute URI")
        return self.add_client(redirect_uris=uris, grant_types=grants, auth_method=method)

    # -- RFC 6749 §4.1.1 ------------------------------------------------------------------
    async def authorize(self, request: Request) -> Response:
        params = request.query_params
        client = self.clients.get(params.get("client_id", ""))
        redirect_uri = params.get("redirect_uri")
        if client is None:
            return OAuthError("invalid_request", "unknown client_id").response()
        if redirect_uri is None and len(client.redirect_uris) == 1:
            redirect_uri = client.redirect_uris[0]
        # §4.1.2.1: never redirect to a URI that is not registered.
        if redirect_uri not in client.redirect_uris:
            return OAuthError("invalid_request", "redirect_uri is not registered").response()
        answer = {"state": params["state"]} if "state" in params else {}
        try:
            code = self._approve(
                client,
                params.get("response_type"),
                params.get("scope"),
                params.get("code_challenge"),
                params.get("code_challenge_method"),
                params.getlist("resource"),
                redirect_uri,
            )
            answer["code"] = code
        except OAuthError as error:
            answer.update(error=error.error, error_description=error.description)
        answer["iss"] = self.issuer.issuer  # RFC 9207 §2
        separator = "&" if "?" in redirect_uri else "?"
        return RedirectResponse(f"{redirect_uri}{separator}{urlencode(answer)}", 302)

    def _approve(
        self,
        client: Client,
        response_type: str | None,
        scope: str | None,
        challenge: str | None,
        method: str | None,
        resources: Sequence[str],
        redirect_uri: str,
    ) -> str:
        if response_type != "code":
            raise OAuthError("unsupported_response_type", "only response_type=code")
        if "authorization_code" not in client.grant_types:
            raise OAuthError("unauthorized_client", "the client may not use this grant")
        if not challenge or method != "S256":  # RFC 7636 §4.3; OAuth 2.1: always PKCE
            raise OAuthError("invalid_request", "PKCE with code_challenge_method=S256 required")
        code = secrets.token_urlsafe(24)
        while len(self.codes) >= MAX_CODES:  # never redeemed ones too: a bound, oldest out
            del self.codes[next(iter(self.codes))]
        self.codes[code] = Grant(
            client.client_id,
            self.issuer.subject,
            self.issuer.check_scopes(scope),
            check_resources(resources),
            redirect_uri,
            challenge,
            self.issuer.clock() + CODE_LIFETIME,
        )
        return code

    # -- RFC 6749 §3.2 --------------------------------------------------------------------
    async def token(self, request: Request) -> Response:
        form = await read_form(request)
        try:
            client = self._authenticate(request, form)
            grant_type = form.get("grant_type")
            if grant_type not in client.grant_types:
                raise OAuthError(
                    "unsupported_grant_type"
                    if grant_type not in GRANT_TYPES
                    else "unauthorized_client",
                    f"grant_type {grant_type!r}",
                )
            grant = self._grant(client, str(grant_type), form)
            jkt = None
            if "dpop" in request.headers:
                jkt = check_dpop_proof(
                    request.headers["dpop"],
                    "POST",
                    self.issuer.base + "/token",
                    self.issuer.clock(),
                )
            return JSONResponse(
                self._issue(client, grant, jkt, str(grant_type)),
                headers={"cache-control": "no-store", "pragma": "no-cache"},
            )
        except OAuthError as error:
            return error.response()

    def _authenticate(self, request: Request, form: FormData) -> Client:
        """RFC 6749 §2.3.1: HTTP Basic (form-encoded id and secret) or the body."""
        client_id, secret = form.get("client_id"), form.get("client_secret")
        authorization = request.headers.get("authorization", "")
        if authorization[:6].lower() == "basic ":
            try:
                decoded = base64.b64decode(authorization[6:], validate=True).decode()
                raw_id, _, raw_secret = decoded.partition(":")
            except ValueError:
                raise OAuthError("invalid_client", "malformed Basic credentials", 401) from None
            client_id, secret = unquote(raw_id.replace("+", " ")), unquote(raw_secret)
        client = self.clients.get(str(client_id or ""))
        if client is None:
            raise OAuthError("invalid_client", "unknown client", 401)
        if client.secret is not None and not (
            isinstance(secret, str) and secrets.compare_digest(secret, client.secret)
        ):
            raise OAuthError("invalid_client", "client authentication failed", 401)
        return client

    def _grant(self, client: Client, grant_type: str, form: FormData) -> Grant:
        resources = check_resources([str(v) for v in form.getlist("resource")])
        scope = form.get("scope")
        requested = split_scope(str(scope)) if scope is not None else []  # RFC 6749 §3.3
        if grant_type == "client_credentials":
            if client.secret is None:  # RFC 6749 §4.4: confidential clients only
                raise OAuthError("unauthorized_client", "public clients cannot use this grant")
            scopes = self.issuer.check_scopes(str(scope) if scope is not None else None)
            return Grant(client.client_id, client.client_id, scopes, resources)
        if grant_type == GRANT_TYPES[3]:  # RFC 8693 token exchange
            return self.issuer.exchange_grant(client, form)
        if grant_type == "refresh_token":
            grant = self.refresh_tokens.get(str(form.get("refresh_token", "")))
            if grant is None or grant.client_id != client.client_id:
                raise OAuthError("invalid_grant", "unknown refresh_token")
        else:
            grant = self._redeem_code(client, form)
        return replace(
            grant,
            scopes=narrow(requested, grant.scopes, "invalid_scope"),
            resources=narrow(resources, grant.resources, "invalid_target"),
        )

    def _redeem_code(self, client: Client, form: FormData) -> Grant:
        """RFC 6749 §4.1.3: one use, same client and redirect_uri, then PKCE."""
        grant = self.codes.pop(str(form.get("code", "")), None)
        if (
            grant is None
            or grant.client_id != client.client_id
            or grant.expires_at < self.issuer.clock()
        ):
            raise OAuthError("invalid_grant", "unknown, used or expired code")
        if form.get("redirect_uri", grant.redirect_uri) != grant.redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri differs from the authorization's")
        check_pkce(str(form.get("code_verifier") or "") or None, grant.code_challenge)
        return replace(grant, expires_at=float("inf"))

    def _issue(
        self, client: Client, grant: Grant, jkt: str | None, grant_type: str
    ) -> dict[str, Any]:
        access_token = self.issuer.issue(
            grant.subject, grant.client_id, grant.scopes, grant.resources, jkt, grant.claims
        )
        answer: dict[str, Any] = {
            "access_token": access_token,
            "token_type": "DPoP" if jkt else "Bearer",
            "expires_in": int(self.issuer.token_lifetime),
            "scope": " ".join(grant.scopes),
        }
        if grant_type == GRANT_TYPES[3]:  # RFC 8693 §2.2.1: REQUIRED
            answer["issued_token_type"] = "urn:ietf:params:oauth:token-type:access_token"
        # RFC 6749 §4.4.3: none for client credentials; RFC 7591 §2: only if registered.
        if grant_type in GRANT_TYPES[:2] and "refresh_token" in client.grant_types:
            refresh = secrets.token_urlsafe(32)
            self.refresh_tokens[refresh] = grant
            answer["refresh_token"] = refresh
        return answer

    # -- RFC 7662 -------------------------------------------------------------------------
    async def introspect(self, request: Request) -> Response:
        form = await read_form(request)
        try:
            self._authenticate(request, form)  # §2.1: the caller must be authenticated
        except OAuthError as error:
            return error.response()
        claims = self.issued.get(str(form.get("token", "")))
        exp = claims.get("exp") if claims else None
        if claims is None or (isinstance(exp, int | float) and exp <= self.issuer.clock()):
            return JSONResponse({"active": False}, headers={"cache-control": "no-store"})
        token_type = "DPoP" if "cnf" in claims else "Bearer"
        return JSONResponse(
            {"active": True, "token_type": token_type, **claims},
            headers={"cache-control": "no-store"},
        )
