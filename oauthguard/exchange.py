"""Calling downstream APIs on the caller's behalf: OAuth 2.0 Token Exchange (RFC 8693).

An API (or an MCP server's tool) must not pass the token it received on to another API;
it exchanges it for a token meant for that API:

>>> exchange = TokenExchange("https://as.example.com", client_id="orders-api",
...                          client_secret="...")
>>> token = await exchange.token_for(request.auth, resource="https://billing.example.com")
>>> async with httpx.AsyncClient(auth=ExchangeAuth(exchange, request.auth,
...                                                resource="https://billing.example.com")):
...     ...

For a ``providers.entra(...)`` issuer the same call uses Entra's on-behalf-of flow. The
server's refusals raise ``ExchangeRefused`` (403 if it reaches the guard), its absence
``TemporarilyUnavailable`` (503). Inside MCP tools ``oauthguard.mcp.exchanged_token`` turns
both into tool errors.
"""

from oauthguard._exchange.answers import (
    ACCESS_TOKEN_TYPE,
    JWT_TOKEN_TYPE,
    DPoPSigner,
    ExchangedToken,
    ExchangeRefused,
    ExchangeUnavailable,
)
from oauthguard._exchange.auth import ExchangeAuth
from oauthguard._exchange.requests import JWT_BEARER_GRANT, TOKEN_EXCHANGE_GRANT
from oauthguard._exchange.settings import TokenExchange

__all__ = [
    "ACCESS_TOKEN_TYPE",
    "JWT_BEARER_GRANT",
    "JWT_TOKEN_TYPE",
    "TOKEN_EXCHANGE_GRANT",
    "DPoPSigner",
    "ExchangeAuth",
    "ExchangeRefused",
    "ExchangeUnavailable",
    "ExchangedToken",
    "TokenExchange",
]
