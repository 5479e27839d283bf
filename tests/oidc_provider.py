"""panva's oidc-provider (tests/interop/provider.mjs) and an oauth4webapi DPoP client
(tests/interop/client.mjs), run by Node for the interop tests."""

from __future__ import annotations

import base64
import contextlib
import json
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import free_port, npm_installed

INTEROP = Path(__file__).parent / "interop"
JWT_RESOURCE = "https://api.oauthguard.test/jwt"
OTHER_JWT_RESOURCE = "https://other.oauthguard.test/jwt"
OPAQUE_RESOURCE = "https://api.oauthguard.test/opaque"
OTHER_OPAQUE_RESOURCE = "https://other.oauthguard.test/opaque"
# provider.mjs signs each client's JWT access tokens with one algorithm.
CLIENTS = {"RS256": "rs256-client", "ES256": "es256-client"}


@dataclass
class AuthorizationServer:
    """The running oidc-provider and what the tests ask of it."""

    issuer: str
    http: httpx.Client

    def token_response(
        self, client_id: str = "rs256-client", resource: str = JWT_RESOURCE, scope: str = "read"
    ) -> dict[str, Any]:
        """RFC 6749 §4.4 client credentials grant with an RFC 8707 ``resource``."""
        response = self.http.post(
            f"{self.issuer}/token",
            auth=(client_id, f"{client_id}-secret"),
            data={"grant_type": "client_credentials", "resource": resource, "scope": scope},
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def token(
        self, client_id: str = "rs256-client", resource: str = JWT_RESOURCE, scope: str = "read"
    ) -> str:
        token: str = self.token_response(client_id, resource, scope)["access_token"]
        return token

    def revoke(self, token: str, client_id: str = "rs256-client") -> None:
        """RFC 7009 §2.1: the client revokes its token."""
        response = self.http.post(
            f"{self.issuer}/token/revocation",
            auth=(client_id, f"{client_id}-secret"),
            data={"token": token},
        )
        assert response.status_code == 200, response.text

    def rotate(self) -> list[str]:
        """New signing keys; the old ones leave the JWKS. The new kids."""
        response = self.http.post(f"{self.issuer}/__rotate")
        assert response.status_code == 200, response.text
        kids: list[str] = response.json()["kids"]
        return kids

    def jwks_kids(self) -> list[str]:
        return [key["kid"] for key in self.http.get(f"{self.issuer}/jwks").json()["keys"]]


def _wait_for_discovery(process: subprocess.Popen[bytes], issuer: str, log: Any) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            pytest.fail(
                f"oidc-provider exited with {process.returncode}:\n"
                f"{log.read().decode(errors='replace')}"
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{issuer}/.well-known/openid-configuration").status_code == 200:
                return
        time.sleep(0.05)
    pytest.fail("oidc-provider did not answer its discovery document within 20 s")


@contextlib.contextmanager
def running_provider(*mcp_endpoints: str) -> Iterator[AuthorizationServer]:
    """tests/interop/provider.mjs on a free loopback port, until the block ends; it issues
    JWT access tokens with the MCP scopes for each of ``mcp_endpoints`` (URLs) too."""
    npm_installed(INTEROP, "oidc-provider")
    issuer = f"http://127.0.0.1:{free_port()}"
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            ["node", "provider.mjs", issuer.rsplit(":", 1)[1], *mcp_endpoints],
            cwd=INTEROP,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            _wait_for_discovery(process, issuer, log)
            with httpx.Client() as http:
                yield AuthorizationServer(issuer, http)
        finally:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def jose_part(token: str, index: int) -> dict[str, Any]:
    """The decoded JSON header (0) or payload (1) of a compact JWS, unverified."""
    segment = token.split(".")[index]
    part: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return part


def jose_header(token: str) -> dict[str, Any]:
    return jose_part(token, 0)


def dpop_client(
    provider: AuthorizationServer,
    url: str,
    client_id: str = "es256-client",
    resource: str = JWT_RESOURCE,
) -> dict[str, Any]:
    """tests/interop/client.mjs (oauth4webapi): a DPoP-bound token from the provider, then
    one call to ``url`` with it (two when we ask for a nonce); what was sent and answered."""
    completed = subprocess.run(
        [
            "node",
            "client.mjs",
            "--issuer",
            provider.issuer,
            "--client-id",
            client_id,
            "--client-secret",
            f"{client_id}-secret",
            "--resource",
            resource,
            "--url",
            url,
        ],
        cwd=INTEROP,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if completed.returncode != 0:
        pytest.fail(f"client.mjs failed ({completed.returncode}):\n{completed.stderr}")
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


def dpop(attempt: dict[str, Any]) -> dict[str, str]:
    """The headers of an attempt by client.mjs, to send them again."""
    return {"Authorization": attempt["authorization"], "DPoP": attempt["proof"]}
