"""``ExchangeAuth``: an ``httpx.Auth`` that sends a downstream request with an exchanged
token (and, for a DPoP-bound one, a fresh proof per request)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator, Iterable
from typing import Any, Protocol

import httpx

from oauthguard._exchange.answers import ExchangedToken


class Exchanging(Protocol):
    async def token_for(
        self,
        subject: object,
        *,
        resource: str | Iterable[str] | None = None,
        audience: str | Iterable[str] | None = None,
        scope: str | Iterable[str] | None = None,
    ) -> ExchangedToken: ...


class ExchangeAuth(httpx.Auth):
    """``httpx.AsyncClient(auth=ExchangeAuth(exchange, token, resource=URL))``: each request
    carries the token exchanged for ``subject`` (cached by the exchange, exchanged again
    when it nears expiry). A DPoP-bound token goes with a new proof for each request
    (RFC 9449 §7.1), and once more with the server's nonce when it asks for one (§9)."""

    def __init__(
        self,
        exchange: Exchanging,
        subject: object,
        *,
        resource: str | Iterable[str] | None = None,
        audience: str | Iterable[str] | None = None,
        scope: str | Iterable[str] | None = None,
    ) -> None:
        self._exchange = exchange
        self._subject = subject
        self._target: dict[str, Any] = {"resource": resource, "audience": audience, "scope": scope}

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("ExchangeAuth exchanges tokens asynchronously: use httpx.AsyncClient")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self._exchange.token_for(self._subject, **self._target)
        url = str(request.url)
        request.headers.update(token.headers(request.method, url))
        response = yield request
        nonce = response.headers.get("dpop-nonce")
        challenge = response.headers.get("www-authenticate", "")
        if (
            token.token_type == "DPoP"
            and response.status_code == 401
            and nonce
            and "use_dpop_nonce" in challenge
        ):
            request.headers.update(token.headers(request.method, url, nonce=nonce))
            yield request
