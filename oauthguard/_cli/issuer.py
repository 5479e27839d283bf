"""``oauthguard issuer``: ``TestIssuer`` as a standalone development authorization server
on loopback, for front-end developers and Swagger UI: its URL and a client's credentials
are printed, and Ctrl-C stops it."""

from __future__ import annotations

import argparse
import json
import secrets
import socket
from typing import TYPE_CHECKING, Any, TextIO

from starlette.responses import PlainTextResponse

from oauthguard._cli.common import Streams
from oauthguard._cli.report import UsageError
from oauthguard._http.urls import is_loopback_host

if TYPE_CHECKING:
    from oauthguard.testing import TestIssuer

PROFILES = ("auth0", "entra", "okta", "keycloak", "cognito")


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "issuer", help="run a development authorization server", description=__doc__
    )
    parser.add_argument("--port", type=port_number, default=0, help="default: a free port")
    parser.add_argument("--host", default="127.0.0.1", help="a loopback address to listen on")
    parser.add_argument("--client-id", default="dev-client")
    parser.add_argument("--client-secret", help="default: a random secret")
    parser.add_argument(
        "--redirect-uri", action="append", default=[], help="a redirect URI of the client"
    )
    parser.add_argument(
        "--swagger-ui",
        action="append",
        default=[],
        metavar="APP_URL",
        help="register Swagger UI of the FastAPI app at APP_URL (a public client, CORS)",
    )
    parser.add_argument("--scope", action="append", help="a scope clients may ask for")
    parser.add_argument("--profile", choices=PROFILES, help="stand in for this provider")
    parser.set_defaults(run=run)


def port_number(value: str) -> int:
    if not value.isdigit() or not 0 <= int(value) <= 65535:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number (0 to 65535)")
    return int(value)


def listening_socket(host: str, port: int) -> socket.socket:
    """The socket the issuer listens on, bound here so that its URL is known before the
    issuer is made (``--port 0``: the port the system picks)."""
    if not is_loopback_host(host):
        raise UsageError(
            f"--host {host!r} is not a loopback address: the development issuer approves "
            "every request and must not be reachable from other machines"
        )
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns Nagle's algorithm off only on the connections of a
    # socket that names it, and with it on each response's body, written after its head,
    # waits ~40 ms for the client's delayed ACK on a kept-alive connection.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)  # connections wait in the backlog until uvicorn accepts them
    return sock


def run(args: argparse.Namespace, streams: Streams) -> int:
    try:
        import uvicorn
    except ImportError:
        raise UsageError(
            "the development issuer runs on uvicorn: pip install 'oauthguard[demo]'"
        ) from None
    from oauthguard.testing import TestIssuer

    sock = listening_socket(args.host, args.port)
    host = f"[{args.host}]" if ":" in args.host else args.host
    base = f"http://{host}:{sock.getsockname()[1]}"
    issuer = TestIssuer(base, allowed_scopes=args.scope, profile=args.profile)
    secret = args.client_secret or secrets.token_urlsafe(24)
    issuer.register_client(
        client_id=args.client_id, client_secret=secret, redirect_uris=args.redirect_uri
    )
    swagger = [issuer.register_swagger_client(url) for url in args.swagger_ui]
    announce(streams.stdout, issuer, args.client_id, secret, swagger, args.json)
    app = LoopbackHostOnly(issuer.app, sock.getsockname()[1], args.host)
    config = uvicorn.Config(app, log_level="warning" if not args.verbose else "info")
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])  # uvicorn stops cleanly on SIGINT (Ctrl-C) and SIGTERM
    except KeyboardInterrupt:
        pass  # uvicorn raises the Ctrl-C it handled again, once it has stopped
    finally:
        sock.close()
    streams.stderr.write("oauthguard issuer: stopped\n")
    return 0


class LoopbackHostOnly:
    """The issuer's app, answering only requests that name it at its own loopback address.

    A web page whose own host name resolves to 127.0.0.1 (DNS rebinding) reaches the port
    as a same-origin page would, but its requests carry its own name in ``Host``: they get a
    421, and the page cannot drive the issuer, which approves every authorization request.
    """

    def __init__(self, app: Any, port: int, host: str) -> None:
        self.app = app
        names = {host.strip("[]").lower(), "localhost"}
        self.hosts = {(f"[{name}]" if ":" in name else name) + f":{port}" for name in names}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket") and self._host(scope) not in self.hosts:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            refusal = PlainTextResponse(
                "this issuer answers only at its loopback address", status_code=421
            )
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    @staticmethod
    def _host(scope: Any) -> str | None:
        hosts = [value for name, value in scope.get("headers", ()) if name == b"host"]
        # One Host header (RFC 9112 §3.2); none or several is a request we do not read.
        return hosts[0].decode("latin-1").lower() if len(hosts) == 1 else None


def announce(
    out: TextIO,
    issuer: TestIssuer,
    client_id: str,
    secret: str,
    swagger: list[str],
    as_json: bool,
) -> None:
    """What a developer needs: the issuer, its endpoints, the client's credentials."""
    metadata = issuer.metadata()
    facts = {
        "issuer": issuer.issuer,
        "metadata": issuer.base_url + issuer.metadata_path if issuer.profile is None else None,
        "jwks_uri": metadata["jwks_uri"],
        "token_endpoint": metadata["token_endpoint"],
        "authorization_endpoint": metadata["authorization_endpoint"],
        "client_id": client_id,
        "client_secret": secret,
        "swagger_ui_client_ids": swagger,
    }
    if as_json:
        out.write(json.dumps(facts) + "\n")
    else:
        lines = [f"{name.replace('_', ' ')}: {value}" for name, value in facts.items() if value]
        example = (
            f"curl -u {client_id}:{secret} -d grant_type=client_credentials "
            f"-d resource=https://api.example.com {metadata['token_endpoint']}"
        )
        out.write("\n".join(lines) + f"\n\na token:\n  {example}\n\nCtrl-C stops it.\n")
    out.flush()
