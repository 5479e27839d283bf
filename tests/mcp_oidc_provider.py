"""An MCP server protected by oauthguard whose authorization server is panva's oidc-provider
(tests/interop/provider.mjs), and a user agent for oidc-provider's login and consent pages:
what the MCP SDK clients' interop tests share."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest
from mcp.server.mcpserver import MCPServer
from mcp.shared.auth import AuthorizationCodeResult, OAuthToken
from mcp_support import with_tools
from oidc_provider import AuthorizationServer, jose_part, running_provider
from support import free_port, serve

from oauthguard.mcp import protect

REDIRECT_URI = "http://127.0.0.1:9/callback"


@dataclass
class Setup:
    """oidc-provider, our MCP endpoint it issues tokens for, and another MCP endpoint."""

    provider: AuthorizationServer
    endpoint: str
    elsewhere: str


@contextlib.contextmanager
def guarded_by_provider() -> Iterator[Setup]:
    """oidc-provider, and on loopback an MCP server behind ``protect`` that trusts it:
    ``whoami`` needs ``mcp:tools``, ``admin`` ``mcp:admin`` too."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}/mcp"
    elsewhere = f"http://127.0.0.1:{free_port()}/mcp"  # another MCP server's, never served
    with running_provider(endpoint, elsewhere) as provider:
        app = protect(
            with_tools(MCPServer("guarded")).streamable_http_app(),
            resource=endpoint,
            authorization_servers=provider.issuer,
            scopes="mcp:tools",
            tool_scopes={"admin": "mcp:admin"},
        )
        with serve(app, port=port):
            yield Setup(provider, endpoint, elsewhere)


def query(url: str) -> dict[str, str]:
    """The parameters of ``url``'s query, each once."""
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


class AuthorizationRefused(Exception):
    """oidc-provider answered the redirect URI with an error (RFC 6749 §4.1.2.1)."""


class ProviderBrowser:
    """The user agent of the authorization-code flow: follows oidc-provider's redirects, signs
    in on its development login page as ``login``, consents, and hands the client what came
    back to the redirect URI (``follow``; ``redirect`` and ``callback`` are the Python SDK's
    handlers)."""

    FORM = re.compile(
        r'<form[^>]* action="([^"]+)"[^>]*>\s*'
        r'<input type="hidden" name="prompt" value="(\w+)"'
    )

    def __init__(self, login: str) -> None:
        self.login = login
        self.authorizations: list[dict[str, str]] = []
        self.pages: list[str] = []  # the prompts it answered, in order
        self.result: AuthorizationCodeResult | None = None
        self.refusals: list[dict[str, str]] = []

    async def redirect(self, url: str) -> None:
        """The Python SDK's redirect handler."""
        self.result = self._callback(await self.follow(url))

    async def follow(self, url: str) -> str:
        """Goes to the authorization URL ``url``, signs in and consents; the redirect URI
        with what oidc-provider sent back."""
        self.authorizations.append(query(url))
        async with httpx.AsyncClient() as http:  # one cookie jar: oidc-provider's session
            response = await http.get(url)
            for _ in range(10):
                if response.is_redirect:
                    location = urljoin(str(response.url), response.headers["location"])
                    if location.startswith(REDIRECT_URI + "?"):
                        if "error" in (answer := query(location)):
                            self.refusals.append(answer)
                        return location
                    response = await http.get(location)
                else:
                    response = await self._submit(http, response)
        pytest.fail("oidc-provider never redirected back to the client")

    async def _submit(self, http: httpx.AsyncClient, page: httpx.Response) -> httpx.Response:
        found = self.FORM.search(page.text)
        assert page.status_code == 200 and found, f"{page.status_code} {page.text[:2000]}"
        action, prompt = found.groups()
        self.pages.append(prompt)
        form = {"prompt": prompt}
        if prompt == "login":  # the development login page takes any login and password
            form |= {"login": self.login, "password": "any"}
        return await http.post(urljoin(str(page.url), action), data=form)

    def _callback(self, location: str) -> AuthorizationCodeResult:
        if "error" in (answer := query(location)):
            raise AuthorizationRefused(answer)
        return AuthorizationCodeResult(
            code=answer["code"], state=answer["state"], iss=answer.get("iss")
        )

    async def callback(self) -> AuthorizationCodeResult:
        assert self.result is not None
        result, self.result = self.result, None
        return result


def assert_issued_by(setup: Setup, me: dict[str, Any], token: OAuthToken | None) -> None:
    """``me`` (what get_access_token() showed inside the tool) is oidc-provider's RFC 9068
    token ``token`` for our endpoint."""
    assert token is not None
    header, claims = jose_part(token.access_token, 0), jose_part(token.access_token, 1)
    assert header["typ"] == "at+jwt" and header["kid"] in setup.provider.jwks_kids()
    assert me["claims"] == claims
    assert claims["iss"] == setup.provider.issuer and claims["aud"] == setup.endpoint
    assert me["resource"] == setup.endpoint and me["expires_at"] == claims["exp"]
    assert me["subject"] == claims["sub"] and me["client_id"] == claims["client_id"]
    assert me["scopes"] == sorted(claims["scope"].split())
