"""The normal form of request paths: which paths are in it, how the guard refuses the others
(HTTP and WebSocket scopes as servers build them), and configured paths that could never
match a request."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from apps import NOW, RESOURCE, Clock, bearer, guard
from guards import build_guard
from support import assert_refused

from oauthguard import ConfigurationError, OAuthGuard, require
from oauthguard._asgi.types import Receive, Scope, Send
from oauthguard._http.paths import NormalPaths, path_problem
from oauthguard.testing import TestIssuer

ISSUER = TestIssuer(algorithms=("RS256",))


@pytest.mark.parametrize(
    "path",
    ["/", "/mcp", "/a/b/", "/.well-known/x", "/v1.0/items", "/a/.hidden", "/café", "/a b/c"],
)
def test_paths_in_normal_form_have_no_problem(path: str) -> None:
    assert path_problem(path) is None
    assert path_problem(path, path.encode()) is None


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("/a/./b", "dot segment"),
        ("/a/../b", "dot segment"),
        ("/a/..", "dot segment"),
        ("/.", "dot segment"),
        ("/a//b", "empty segment"),
        ("//", "empty segment"),
        ("", "no leading '/'"),
        ("*", "no leading '/'"),
        ("http://h/a", "no leading '/'"),
        ("/a\\b", "a backslash"),
        ("/a%b", "'%' left after percent-decoding"),
        ("/a%2e%2e/b", "'%' left after percent-decoding"),
        ("/a;b", "';'"),
        ("/a\x00", "non-printable"),
        ("/a\nb", "non-printable"),
        ("/a\x7f", "non-printable"),
        ("/a\x85", "non-printable"),
        ("/a\u2028", "non-printable"),
        ("/a\u200b", "non-printable"),
        ("/a\xa0", "non-printable"),
        ("/a\ud800", "non-printable"),
        ("/a./b", "ending in '.' or ' '"),
        ("/a.", "ending in '.' or ' '"),
        ("/a...", "ending in '.' or ' '"),
        ("/a /b", "ending in '.' or ' '"),
        ("/a ", "ending in '.' or ' '"),
    ],
)
def test_each_path_out_of_normal_form_names_its_problem(path: str, problem: str) -> None:
    found = path_problem(path)
    assert found is not None and problem in found


@pytest.mark.parametrize(
    ("path", "raw_path", "root_path", "problem"),
    [
        ("/a/b", b"/a%2Fb", "", "encoded '/'"),
        ("/a/b", b"/a%2fb", "", "encoded '/'"),
        ("/a\ufffd", b"/a%ff", "", "not UTF-8"),
        ("/a", b"/b", "", "does not decode to its path"),
        ("/a", b"/a/", "", "does not decode to its path"),
        ("/api/a", b"/a", "/other", "does not decode to its path"),
        ("/a", b"/api/a", "/api", "does not decode to its path"),
    ],
)
def test_a_raw_path_that_is_not_its_path_names_its_problem(
    path: str, raw_path: bytes, root_path: str, problem: str
) -> None:
    found = path_problem(path, raw_path, root_path)
    assert found is not None and problem in found


@pytest.mark.parametrize(
    ("path", "raw_path", "root_path"),
    [
        ("/mcp", b"/mcp", ""),
        ("/mcp", b"/%6Dcp", ""),
        ("/mcp", b"/mcp?page=2", ""),  # servers that leave the query in raw_path
        ("/café", b"/caf%C3%A9", ""),
        ("/café", "/café".encode(), ""),  # servers that pass non-ASCII bytes as they came
        ("/a?b", b"/a%3Fb", ""),
        ("/tags/C#", b"/tags/C%23", ""),  # a '#' in a segment, encoded
        ("/api/a", b"/api/a", "/api"),
        ("/api/a", b"/a", "/api"),  # servers that leave root_path out of raw_path
    ],
)
def test_a_raw_path_that_decodes_to_its_path_has_no_problem(
    path: str, raw_path: bytes, root_path: str
) -> None:
    assert path_problem(path, raw_path, root_path) is None


async def call(app: Any, path: str, raw_path: Any = None, **scope: Any) -> httpx.Response:
    """Call ``app`` with the scope a server builds for ``path``; the response it sends."""
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    request = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogatepass") if raw_path is None else raw_path,
        "root_path": "",
        "query_string": b"",
        "scheme": "https",
        "http_version": "1.1",
        "headers": [(b"host", b"api.test")],
        "server": ("api.test", 443),
        **scope,
    }
    await app(request, receive, send)
    start = next(m for m in messages if m["type"].endswith("response.start"))
    body = b"".join(m.get("body", b"") for m in messages if m["type"].endswith("response.body"))
    return httpx.Response(start["status"], headers=start["headers"], content=body)


def token_header(scope: str = "read", audience: str = RESOURCE) -> list[tuple[bytes, bytes]]:
    token = ISSUER.token(audience=audience, now=NOW, scope=scope)
    return [(b"host", b"api.test"), (b"authorization", bearer(token)["Authorization"].encode())]


@pytest.mark.parametrize(
    ("path", "raw_path"),
    [
        ("/mcp/../mcp", None),
        ("/health/.", None),
        ("/docs//x", None),
        ("/docs/\x00", None),
        ("/.well-known/oauth-protected-resource/./mcp", None),
        ("/mcp", b"/health"),
        ("/docs/a/b", b"/docs/a%2Fb"),
        ("/mcp#/x", b"/mcp#/x"),  # a '#' as sent: h11 passes it on
    ],
)
@pytest.mark.anyio
async def test_a_request_out_of_normal_form_is_400_invalid_request(
    path: str, raw_path: bytes | None
) -> None:
    app = guard(ISSUER, Clock(), public_paths=["/health", "/docs/*"])
    for headers in ([(b"host", b"api.test")], token_header()):
        response = await call(app, path, raw_path, headers=headers)
        params = assert_refused(response, 400, "invalid_request")
        assert params["error_description"].startswith("the path is not in normal form")
        assert params["resource_metadata"].endswith("/oauth-protected-resource/mcp")


@pytest.mark.anyio
async def test_a_path_in_normal_form_still_passes() -> None:
    app = guard(ISSUER, Clock(), public_paths=["/health", "/docs/*"])
    assert (await call(app, "/mcp", b"/%6Dcp", headers=token_header())).status_code == 200
    assert (await call(app, "/docs/a.b/c")).status_code == 200
    assert (await call(app, "/api/health", b"/api/health", root_path="/api")).status_code == 200
    assert_refused(await call(app, "/mcp"), 401, None)


@pytest.mark.anyio
async def test_a_path_seen_in_normal_form_is_checked_again_with_another_raw_path() -> None:
    # The guard remembers paths found in normal form with the raw_path and root_path they
    # came with; the same path sent otherwise is checked (and refused) as if never seen.
    app = guard(ISSUER, Clock())
    headers = token_header()
    for _ in range(2):
        assert (await call(app, "/mcp", b"/mcp", headers=headers)).status_code == 200
        assert (await call(app, "/mcp", b"/%6Dcp", headers=headers)).status_code == 200
    for raw_path in (b"/health", b"/m%2Fcp", "/mcp"):
        assert_refused(await call(app, "/mcp", raw_path, headers=headers), 400, "invalid_request")
    assert (await call(app, "/api/mcp", b"/mcp", root_path="/api")).status_code != 400
    response = await call(app, "/api/mcp", b"/mcp", headers=headers)
    assert_refused(response, 400, "invalid_request")


def test_the_table_of_normal_paths_is_bounded() -> None:
    paths = NormalPaths(max_entries=3)
    for index in range(10):
        assert paths.problem(f"/p{index}", None, "") is None
        assert len(paths) <= 3
    assert paths.problem("/" + "a" * 300, None, "") is None
    assert "/" + "a" * 300 not in paths
    assert paths.problem("/a/../b", None, "") is not None
    assert "/a/../b" not in paths
    assert paths.problem("/x", bytearray(b"/x"), "") is None
    assert "/x" not in paths  # only exact bytes are remembered


@pytest.mark.anyio
async def test_a_root_path_ending_in_a_slash_is_refused_not_misread() -> None:
    # uvicorn --root-path /api/ puts "/api//mcp" in path: a resource or full-path rule
    # would not match it, so it is refused like any other empty segment.
    app = guard(ISSUER, Clock())
    response = await call(app, "/api//mcp", root_path="/api/", headers=token_header())
    assert_refused(response, 400, "invalid_request")


@pytest.mark.anyio
async def test_a_websocket_out_of_normal_form_is_denied_with_400_before_accept() -> None:
    app = guard(ISSUER, Clock())
    extensions = {"websocket.http.response": {}}
    for path in ("/ws/../ws", "/ws//"):
        response = await call(
            app, path, type="websocket", extensions=extensions, headers=token_header()
        )
        assert_refused(response, 400, "invalid_request")


@pytest.mark.anyio
async def test_a_raw_path_the_guard_cannot_read_is_refused_never_a_500_never_a_pass() -> None:
    app = guard(ISSUER, Clock())
    response = await call(app, "/mcp", "/mcp/../admin", headers=token_header())
    params = assert_refused(response, 400, "invalid_request")
    assert "a raw_path that is not bytes" in params["error_description"]


async def echo_method(scope: Scope, receive: Receive, send: Send) -> None:
    """An app that answers any method with its name."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": scope["method"].encode()})


def method_app(rules: Any) -> OAuthGuard:
    return build_guard(
        echo_method,
        resource=RESOURCE,
        authorization_servers=[ISSUER.issuer],
        http_client=ISSUER.http_client(),
        clock=Clock(),
        rules=rules,
    )


@pytest.mark.anyio
async def test_a_method_not_in_upper_case_is_refused_only_where_rules_name_methods() -> None:
    ruled = method_app({("DELETE", "/orders"): require("orders:delete")})
    response = await call(ruled, "/orders", method="delete", headers=token_header())
    params = assert_refused(response, 400, "invalid_request")
    assert "upper case" in params["error_description"]
    assert (await call(ruled, "/orders", method="GET", headers=token_header())).status_code == 200
    unruled = method_app({"/orders": require("read")})
    response = await call(unruled, "/orders", method="delete", headers=token_header())
    assert (response.status_code, response.text) == (200, "delete")


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"rules": {"/a/../admin": require("admin")}}, "dot segment"),
        ({"rules": {"/a//admin": require("admin")}}, "empty segment"),
        ({"rules": {("POST", "/a;x"): require("admin")}}, "';'"),
        ({"rules": {"/a%2Fb": require("admin")}}, "encoded '/'"),
        ({"rules": {"/a%25b": require("admin")}}, "'%'"),
        ({"rules": {"/a%FF": require("admin")}}, "not UTF-8"),
        ({"rules": {"/admin.": require("admin")}}, "ending in '.'"),
        ({"public_paths": ["/docs/../*"]}, "dot segment"),
        ({"public_paths": ["/health//*"]}, "empty segment"),
        ({"public_paths": ["/a\\b"]}, "a backslash"),
        ({"resources": ["https://api.test/a%2Fb"]}, "encoded '/'"),
        ({"resources": ["https://api.test/a/./b"]}, "dot segment"),
    ],
)
def test_a_configured_path_that_could_never_match_is_a_configuration_error(
    options: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ConfigurationError, match="would never match") as error:
        guard(ISSUER, Clock(), **options)
    assert problem in str(error.value)


@pytest.mark.anyio
async def test_configured_paths_are_matched_percent_decoded() -> None:
    cafe = "https://api.test/caf%C3%A9"
    app = guard(
        ISSUER,
        Clock(),
        rules={"/%6Dcp": require("write")},
        resources=[cafe],
        public_paths=["/do%63s/*", "/files/a.*"],
    )
    # RFC 3986 §6.2.2.2: the rule for /%6Dcp is the rule for /mcp.
    assert_refused(await call(app, "/mcp", headers=token_header()), 403, "insufficient_scope")
    assert (await call(app, "/docs/x")).status_code == 200
    assert (await call(app, "/files/a.b")).status_code == 404  # public, and not a route
    # The resource's path is /café, as requests name it, and its document is served there.
    response = await call(app, "/café", b"/caf%C3%A9", headers=token_header())
    assert_refused(response, 401, "invalid_token")
    document = await call(app, "/.well-known/oauth-protected-resource/café", b"/x")
    assert document.status_code == 400  # raw_path and path disagree
    raw = b"/.well-known/oauth-protected-resource/caf%C3%A9"
    document = await call(app, "/.well-known/oauth-protected-resource/café", raw)
    assert document.json()["resource"] == cafe
