"""oauthguard in one minute: a local issuer, a protected API, and real HTTP between them.

Run:  python examples/quickstart.py
Everything runs on 127.0.0.1; nothing to configure.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from oauthguard import Metadata, OAuthGuard, require
from oauthguard._wire.challenge import parse_challenges
from oauthguard.testing import DPoPKey, TestIssuer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(app: Any, port: int) -> uvicorn.Server:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    return server


def step(title: str) -> None:
    print(f"\n\033[1m== {title}\033[0m")


def show(response: httpx.Response) -> None:
    print(f"{response.request.method} {response.request.url} -> {response.status_code}")
    if "www-authenticate" in response.headers:
        print(f"  WWW-Authenticate: {response.headers['www-authenticate']}")
    try:
        print("  " + json.dumps(response.json(), indent=2).replace("\n", "\n  "))
    except ValueError:
        print(f"  {response.text[:200]}")


async def whoami(request: Request) -> JSONResponse:
    token = request.auth
    return JSONResponse(
        {"subject": token.subject, "client_id": token.client_id, "scopes": sorted(token.scopes)}
    )


@require("payments:write", acr_values="urn:example:mfa", max_age=300)
async def transfer(request: Request) -> JSONResponse:
    return JSONResponse({"transferred": True, "by": request.auth.subject})


def main() -> None:
    issuer_port, api_port = free_port(), free_port()
    issuer = TestIssuer(f"http://127.0.0.1:{issuer_port}")
    resource = f"http://127.0.0.1:{api_port}/api"

    api = Starlette(
        routes=[Route("/api", whoami), Route("/api/transfer", transfer, methods=["POST"])]
    )
    api.add_middleware(
        OAuthGuard,
        resource=resource,
        authorization_servers=[issuer.issuer],
        metadata=Metadata(resource_name="Quickstart API"),
    )
    servers = [start(issuer.app, issuer_port), start(api, api_port)]
    print(f"Authorization server (TestIssuer): {issuer.issuer}")
    print(f"Protected resource:               {resource}")

    with httpx.Client() as http:
        step("1. A request without a token is refused with a challenge (RFC 6750 §3)")
        refused = http.get(resource)
        show(refused)
        (scheme, params), *others = parse_challenges(refused.headers["www-authenticate"])
        print(
            f"  -> the {scheme} challenge names no error (there was no token) and points at "
            "the resource's metadata."
        )
        for other, other_params in others:
            print(
                f"  -> a {other} challenge follows: DPoP-bound tokens are accepted too, signed "
                f"with {other_params['algs']} (RFC 9449 §7.1)."
            )

        step("2. The client follows resource_metadata (RFC 9728) to find the issuer")
        document = http.get(params["resource_metadata"])
        show(document)
        as_url = document.json()["authorization_servers"][0]

        step("3. ... and reads the authorization server's metadata (RFC 8414)")
        as_metadata = http.get(f"{as_url}/.well-known/oauth-authorization-server")
        show(as_metadata)

        step("4. The client gets a token for this resource (client credentials, RFC 8707)")
        client_id, secret = issuer.register_client(grant_types=["client_credentials"])
        granted = http.post(
            as_metadata.json()["token_endpoint"],
            auth=(client_id, secret or ""),
            data={"grant_type": "client_credentials", "scope": "read", "resource": resource},
        )
        token = granted.json()["access_token"]
        print(f"POST {granted.request.url} -> {granted.status_code}")
        print(f"  access_token: {token[:40]}... (a signed JWT, RFC 9068, aud = the resource)")
        show(http.get(resource, headers={"Authorization": f"Bearer {token}"}))

        step("5. A DPoP-bound token (RFC 9449): each request carries a fresh signed proof")
        key = DPoPKey()
        token_endpoint = as_metadata.json()["token_endpoint"]
        bound = http.post(
            token_endpoint,
            auth=(client_id, secret or ""),
            headers={"DPoP": key.proof("POST", token_endpoint)},
            data={"grant_type": "client_credentials", "scope": "read", "resource": resource},
        ).json()
        print(f"  token_type: {bound['token_type']} (bound to the key {key.thumbprint[:16]}...)")
        proof = key.proof("GET", resource, token=bound["access_token"])
        dpop_headers = {"Authorization": f"DPoP {bound['access_token']}", "DPoP": proof}
        show(http.get(resource, headers=dpop_headers))
        print("  -> the same proof again is a replay:")
        show(http.get(resource, headers=dpop_headers))
        print("  -> and the bound token without its proof, as a Bearer token:")
        show(http.get(resource, headers={"Authorization": f"Bearer {bound['access_token']}"}))

        step('6. Bad tokens are refused with error="invalid_token" and the reason')
        expired = issuer.token(audience=resource, expires_in=-120)
        show(http.get(resource, headers={"Authorization": f"Bearer {expired}"}))
        other = issuer.token(audience="https://another-api.example")
        show(http.get(resource, headers={"Authorization": f"Bearer {other}"}))
        tampered = token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")
        show(http.get(resource, headers={"Authorization": f"Bearer {tampered}"}))

        step("7. A sensitive route needs a recent MFA login (RFC 9470 step-up)")
        transfer_url = resource + "/transfer"
        now = int(time.time())
        password_login = issuer.token(
            audience=resource,
            scope="payments:write",
            subject="alice",
            claims={"acr": "urn:example:pwd", "auth_time": now - 3600},
        )
        show(http.post(transfer_url, headers={"Authorization": f"Bearer {password_login}"}))
        print(
            "  -> 401 insufficient_user_authentication: the client sends the user back to the "
            "authorization server with these acr_values and max_age, then retries."
        )
        mfa_login = issuer.token(
            audience=resource,
            scope="payments:write",
            subject="alice",
            claims={"acr": "urn:example:mfa", "auth_time": now - 10},
        )
        show(http.post(transfer_url, headers={"Authorization": f"Bearer {mfa_login}"}))

        step("8. Without the route's scope: 403 insufficient_scope naming every scope it needs")
        read_only = issuer.token(
            audience=resource,
            scope="read",
            subject="alice",
            claims={"acr": "urn:example:mfa", "auth_time": now - 10},
        )
        show(http.post(transfer_url, headers={"Authorization": f"Bearer {read_only}"}))
        print("  -> the client asks the authorization server for the scopes in the challenge.")

    for server in servers:
        server.should_exit = True
    print("\nDone. Read the README for scopes, step-up, DPoP and introspection.")


if __name__ == "__main__":
    main()
