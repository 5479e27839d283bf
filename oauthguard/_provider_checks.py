"""What each identity provider's access tokens must be, and the fix for its usual mistakes.

The ``checks`` refuse a token a provider issued for something else (its ID tokens above
all: OpenID Connect Core §2 makes them assertions for the client, never credentials for an
API); each ``explain`` names the fix for a refusal a provider's setup typically causes.
Values from a token are bounded and quoted before they are put in a message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from oauthguard._verify.diagnostics import TokenKind
from oauthguard._verify.trust import Explain
from oauthguard._wire.errors import InvalidToken

Header = Mapping[str, Any]
Claims = Mapping[str, Any]


def shown(value: object) -> str:
    """A claim's value for a message: its repr, cut to 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def audiences_of(claims: Claims) -> list[str]:
    aud = claims.get("aud")
    values = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    return [value for value in values if isinstance(value, str)]


def of_another_kind(check: TokenKind, header: Header, claims: Claims) -> bool:
    """Whether the provider's kind check refuses the token (an ID token, say): then the
    refusal already says what to send, and an audience fix would mislead."""
    try:
        check(header, claims)
    except InvalidToken:
        return True
    return False


# -- Auth0 ---------------------------------------------------------------------------------
@TokenKind
def auth0_access_token(header: Header, claims: Claims) -> None:
    """Auth0 access tokens name their client (``azp``, or ``client_id`` in the RFC 9068
    dialect); its ID tokens carry neither, or an OIDC ``nonce``/``at_hash``."""
    if "nonce" in claims or "at_hash" in claims or not ("azp" in claims or "client_id" in claims):
        raise InvalidToken(
            "this is an Auth0 ID token, not an access token: send the access token, "
            "requested with audience set to the API identifier"
        )


def auth0_explain(audience: str | None) -> Explain:
    api = shown(audience) if audience else "your API identifier"

    def explain(header: Header, claims: Claims, description: str) -> str | None:
        if "enc" in header or (
            audiences_of(claims)
            and all(value.endswith("/userinfo") for value in audiences_of(claims))
        ):
            return (
                f"Auth0 issues a token for its /userinfo only (opaque or JWE) when the "
                f"authorization request names no audience: add audience={api} to it"
            )
        if "aud" in description and audience is not None:
            if of_another_kind(auth0_access_token, header, claims):
                return None
            return (
                f"the token's aud {shown(claims.get('aud'))} does not name {api}: request it "
                "with audience set to the API identifier (Dashboard > Applications > APIs)"
            )
        return None

    return explain


# -- Microsoft Entra ID --------------------------------------------------------------------
@TokenKind
def entra_access_token(header: Header, claims: Claims) -> None:
    """Graph tokens (a ``nonce`` in the header) are Microsoft Graph's own; ID tokens name no
    calling app (no ``azp`` in v2, no ``appid`` in v1)."""
    if "nonce" in header:
        raise InvalidToken(
            "this token is for Microsoft Graph (its header carries a nonce), not for this "
            "API: request a token with a scope of this API (api://.../name)"
        )
    if not ("azp" in claims or "appid" in claims) or "nonce" in claims:
        raise InvalidToken(
            "this is an Entra ID token (it names no calling app: no azp or appid), not an "
            "access token: send the access token requested with a scope of this API"
        )


def entra_tenant(header: Header, claims: Claims) -> None:
    """``tid`` is the tenant of ``iss``."""
    iss, tid = claims.get("iss"), claims.get("tid")
    # https://learn.microsoft.com/entra/identity-platform/access-tokens#validate-the-issuer:
    # the tenant ID claim and the tenant in the issuer must agree.
    # The tenant is the first path segment of both https://sts.windows.net/{tid}/ and
    # {authority}/{tid}/v2.0: the whole segment, not any part of the URL.
    segments = iss.split("/") if isinstance(iss, str) else []
    if not isinstance(tid, str) or not tid or len(segments) < 4 or segments[3] != tid:
        raise InvalidToken("the token's tid does not name the tenant of its issuer")


def entra_explain(versions: tuple[int, ...], client_id: str) -> Explain:
    def explain(header: Header, claims: Claims, description: str) -> str | None:
        if "nonce" in header:
            return (
                "a Microsoft Graph token was sent to this API: the client must request a token "
                f"for this API (scope api://{client_id}/<name> or {client_id}/.default)"
            )
        version = claims.get("ver")
        if version == "1.0" and 1 not in versions:
            return (
                "this is a v1.0 access token (iss https://sts.windows.net/...) and only v2.0 is "
                'configured: set "accessTokenAcceptedVersion": 2 in the API\'s app manifest '
                "(or accept v1.0 with providers.entra(..., versions=(1, 2)))"
            )
        if version == "2.0" and 2 not in versions:
            return "this is a v2.0 access token: add 2 to providers.entra(versions=...)"
        return None

    return explain


# -- Okta ----------------------------------------------------------------------------------
@TokenKind
def okta_access_token(header: Header, claims: Claims) -> None:
    """Okta access tokens carry the client as ``cid``; its ID tokens do not. Okta's
    introspection answer for an access token names it ``client_id``, with ``token_type``
    ``Bearer``."""
    jti = claims.get("jti")
    introspected = claims.get("token_type") == "Bearer" and "client_id" in claims
    if ("cid" not in claims and not introspected) or (
        isinstance(jti, str) and jti.startswith("ID.")
    ):
        raise InvalidToken(
            "this is an Okta ID token (it has no cid), not an access token: send the "
            "access token of the custom authorization server"
        )


def okta_explain(audience: str) -> Explain:
    def explain(header: Header, claims: Claims, description: str) -> str | None:
        if "aud" in description and not of_another_kind(okta_access_token, header, claims):
            return (
                f"the token's aud {shown(claims.get('aud'))} is not {shown(audience)}: set the "
                "authorization server's Audience (Security > API > Authorization Servers) "
                "or providers.okta(audience=...) to the same value"
            )
        return None

    return explain


# -- Keycloak ------------------------------------------------------------------------------
@TokenKind
def keycloak_access_token(header: Header, claims: Claims) -> None:
    """Keycloak types its tokens in a ``typ`` claim: ``Bearer`` for access tokens."""
    typ = claims.get("typ")
    if typ == "Bearer":
        return
    if typ == "ID":
        raise InvalidToken(
            "this is a Keycloak ID token (typ ID), not an access token: send the access token"
        )
    raise InvalidToken(f"this is not a Keycloak access token (typ {shown(typ)}, not Bearer)")


def keycloak_explain(client_id: str | None) -> Explain:
    def explain(header: Header, claims: Claims, description: str) -> str | None:
        audiences = audiences_of(claims)
        if client_id is None or client_id in audiences or "aud" not in description:
            return None
        if of_another_kind(keycloak_access_token, header, claims):
            return None
        default = " (Keycloak's default audience)" if "account" in audiences else ""
        return (
            f"the token's aud {shown(claims.get('aud'))}{default} does not name "
            f"{shown(client_id)}: add an Audience mapper to a client scope of the calling "
            f"client (Client scopes > Add mapper > By configuration > Audience, Included Client "
            f"Audience: {client_id}, Add to access token: on)"
        )

    return explain


# -- Amazon Cognito ------------------------------------------------------------------------
@TokenKind
def cognito_access_token(header: Header, claims: Claims) -> None:
    """Cognito says what a token is for in ``token_use``: ``access`` for APIs."""
    token_use = claims.get("token_use")
    if token_use == "id":
        raise InvalidToken(
            "this is a Cognito ID token (token_use id), not an access token: send the access token"
        )
    if token_use != "access":
        raise InvalidToken(f"the token's token_use is {shown(token_use)}, not 'access'")


def cognito_explain(header: Header, claims: Claims, description: str) -> str | None:
    if claims.get("token_use") == "id" or "cognito:username" in claims:
        return (
            "the client sent its Cognito ID token: APIs take the access token "
            "(AuthenticationResult.AccessToken, token_use access)"
        )
    return None
