"""The request URI a DPoP proof's htu is compared with (RFC 9449 §4.3, RFC 3986 §6.2)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from oauthguard._dpop.htu import (
    normalize,
    parse_networks,
    parse_origin,
    remove_dot_segments,
    request_uri,
    same_uri,
)
from oauthguard._wire.errors import InvalidRequest


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        # RFC 3986 §5.2.4 and the §5.4 examples, as paths.
        ("/a/b/c/./../../g", "/a/g"),
        ("mid/content=5/../6", "mid/6"),
        ("/./g", "/g"),
        ("/a/b/..", "/a/"),
        ("/a/b/.", "/a/b/"),
        ("/../g", "/g"),
        ("/a/./b/../../c/", "/c/"),
        ("/g.", "/g."),
        ("/.g", "/.g"),
        ("/g..", "/g.."),
        ("/..g", "/..g"),
        ("/", "/"),
    ],
)
def test_dot_segments_are_removed(path: str, expected: str) -> None:
    assert remove_dot_segments(path) == expected


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("HTTPS://API.Example.COM/Path", "https://api.example.com/Path"),
        ("https://api.example.com:443/x", "https://api.example.com/x"),
        ("http://api.example.com:80/x", "http://api.example.com/x"),
        ("https://api.example.com:80/x", "https://api.example.com:80/x"),
        ("https://api.example.com", "https://api.example.com/"),
        ("https://api.example.com/%7euser/%7Eme", "https://api.example.com/~user/~me"),
        ("https://api.example.com/a%2fb%3a", "https://api.example.com/a%2Fb%3A"),
        ("https://api.example.com/%41%2D", "https://api.example.com/A-"),
        ("https://api.example.com/a/../b/./c", "https://api.example.com/b/c"),
        ("https://[::1]:8443/x", "https://[::1]:8443/x"),
        ("https://api.example.com/caf\u00e9", "https://api.example.com/caf%C3%A9"),
    ],
)
def test_uris_are_normalized(uri: str, expected: str) -> None:
    assert normalize(uri) == expected


@pytest.mark.parametrize(
    "uri",
    [
        "ftp://api.example.com/x",
        "https://user@api.example.com/x",
        "https://api.example.com:99999/",
        "https:///x",
        "/relative",
        "https://api.example.com:port/",
        # Not URIs: urlsplit would strip or drop the whitespace and control characters.
        " https://api.example.com/x",
        "\thttps://api.example.com/x",
        "https://api.example.com/x\n",
        "https://api.exam\tple.com/x",
        "https://api.example.com/a b",
        "https://api.example.com/\x00",
    ],
)
def test_what_is_not_an_http_uri_is_refused(uri: str) -> None:
    with pytest.raises(ValueError):
        normalize(uri)


def scope(**values: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": "http",
        "scheme": "https",
        "path": "/mcp",
        "raw_path": b"/mcp",
        "root_path": "",
        "headers": [(b"host", b"api.test")],
        "client": ("10.0.0.1", 1),
        "server": ("10.0.0.2", 8000),
    }
    return {**base, **values}


def test_the_uri_comes_from_the_scope() -> None:
    assert request_uri(scope()) == "https://api.test/mcp"
    assert request_uri(scope(raw_path=b"/a%7Eb", path="/a~b")) == "https://api.test/a%7Eb"
    assert request_uri(scope(raw_path=None, path="/caf\u00e9")) == "https://api.test/caf%C3%A9"
    assert request_uri(scope(scheme="wss")) == "https://api.test/mcp"
    assert request_uri(scope(headers=[])) == "https://10.0.0.2:8000/mcp"


def test_root_path_is_kept_whether_or_not_the_server_puts_it_in_the_path() -> None:
    inside = scope(root_path="/api", path="/api/mcp", raw_path=b"/api/mcp")
    outside = scope(root_path="/api", path="/mcp", raw_path=b"/mcp")
    assert request_uri(inside) == request_uri(outside) == "https://api.test/api/mcp"


def test_forwarding_headers_count_only_from_trusted_peers() -> None:
    forwarded = scope(
        scheme="http",
        headers=[
            (b"host", b"10.0.0.2:8000"),
            (b"x-forwarded-proto", b"http, https"),
            (b"x-forwarded-host", b"api.test"),
        ],
    )
    assert request_uri(forwarded) == "http://10.0.0.2:8000/mcp"
    trusted = parse_networks(["10.0.0.0/8"])
    assert request_uri(forwarded, trusted) == "https://api.test/mcp"
    assert request_uri(forwarded, parse_networks(["192.0.2.1"])) == "http://10.0.0.2:8000/mcp"
    with pytest.raises(ValueError, match="not an IP"):
        parse_networks(["proxy.internal"])


@pytest.mark.parametrize(
    ("node", "walks"),
    [
        ("10.9.9.9", True),
        ("10.9.9.9:8080", True),
        ('"[::ffff:10.9.9.9]:80"', False),
        ('"[fd00::1]:443"', True),
        ("unknown", False),
        ("_hidden", False),
        ("192.0.2.1", False),
    ],
)
def test_forwarded_walks_left_only_past_trusted_nodes(node: str, walks: bool) -> None:
    header = f"for=198.51.100.7;proto=https;host=api.test, for={node};proto=http;host=lb"
    proxied = scope(scheme="http", headers=[(b"host", b"lb"), (b"forwarded", header.encode())])
    trusted = parse_networks(["10.0.0.0/8", "fd00::/8"])
    expected = "https://api.test/mcp" if walks else "http://lb/mcp"
    assert request_uri(proxied, trusted) == expected


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ("https://api.example.com", "https://api.example.com"),
        ("HTTPS://API.Example.COM", "https://api.example.com"),
        ("https://api.example.com:443", "https://api.example.com"),
        ("http://api.example.com:80/", "http://api.example.com"),
        ("https://api.example.com:8443", "https://api.example.com:8443"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("https://[2001:DB8::1]:443", "https://[2001:db8::1]"),
        ("https://xn--bcher-kva.example", "https://xn--bcher-kva.example"),
    ],
)
def test_an_origin_is_normalized(origin: str, expected: str) -> None:
    assert parse_origin(origin) == expected


@pytest.mark.parametrize(
    ("origin", "reason"),
    [
        ("https://api.example.com/mcp", "has a path ('/mcp')"),
        ("https://api.example.com//", "has a path"),
        ("https://api.example.com?x=1", "query or fragment"),
        ("https://api.example.com/?", "query or fragment"),
        ("https://api.example.com#top", "query or fragment"),
        ("https://user:pw@api.example.com", "user information"),
        ("wss://api.example.com", "https:// or http://"),
        ("api.example.com", "https:// or http://"),
        ("//api.example.com", "https:// or http://"),
        ("https:api.example.com", "https:// or http://"),
        ("https://", "https:// or http://"),
        ("https://:8443", "no host"),
        ("https://*.example.com", "not a DNS name"),
        ("https://b\u00fccher.example", "xn--"),
        ("https://[zz]", "IPv6"),
        ("https://api.example.com:0", "port"),
        ("https://api.example.com:65536", "port"),
        ("https://api.example.com:https", "port"),
        (" https://api.example.com", "whitespace"),
        ("https://api.example.com\n", "whitespace"),
    ],
)
def test_what_is_not_only_an_origin_is_refused(origin: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        parse_origin(origin)


def test_a_pinned_origin_replaces_scheme_host_and_forwarding_headers() -> None:
    pinned = "https://api.example.com"
    assert (
        request_uri(scope(headers=[(b"host", b"evil.test")]), (), pinned)
        == "https://api.example.com/mcp"
    )
    assert (
        request_uri(scope(scheme="http", headers=[]), (), pinned) == "https://api.example.com/mcp"
    )
    forwarded = scope(
        headers=[
            (b"host", b"lb"),
            (b"x-forwarded-host", b"evil.test"),
            (b"x-forwarded-proto", b"http"),
            (b"forwarded", b"proto=http;host=evil.test"),
        ]
    )
    trusted = parse_networks(["10.0.0.0/8"])
    assert request_uri(forwarded, trusted) == "http://evil.test/mcp"
    assert request_uri(forwarded, trusted, pinned) == "https://api.example.com/mcp"
    # The path is still the request's, root_path included.
    outside = scope(root_path="/api", path="/m%7Ecp", raw_path=b"/m%7Ecp?q=1")
    assert request_uri(outside, (), pinned) == "https://api.example.com/api/m%7Ecp"


@pytest.mark.parametrize(
    "host",
    [b"api.test/mcp#", b"api.test/mcp?", b"api.test/mcp", b"api.test\\x", b"a@api.test", b""],
)
def test_a_host_that_is_not_a_host_and_port_is_an_invalid_request(host: bytes) -> None:
    """A path, query or fragment in the Host would move the path a proof must name."""
    with pytest.raises(InvalidRequest, match="host"):
        request_uri(scope(headers=[(b"host", host)]))
    if host:  # a trusted proxy's, likewise (an empty one names none: the Host counts)
        trusted = parse_networks(["10.0.0.0/8"])
        forwarded = [(b"host", b"api.test"), (b"forwarded", b'host="' + host + b'"')]
        with pytest.raises(InvalidRequest, match="host"):
            request_uri(scope(headers=forwarded), trusted)


@pytest.mark.parametrize(
    "host", [b"api.test", b"API.test:8443", b"127.0.0.1:8000", b"[::1]", b"[::1]:443", b"a.test:"]
)
def test_hosts_as_they_are_written_are_read(host: bytes) -> None:
    assert request_uri(scope(headers=[(b"host", host)])) == f"https://{host.decode()}/mcp"


@pytest.mark.parametrize("raw_path", [b"/mcp#/other", b"/mcp#x?y"])
def test_a_request_uri_with_a_fragment_names_no_uri_a_proof_can_name(raw_path: bytes) -> None:
    uri = request_uri(scope(path=raw_path.decode(), raw_path=raw_path))
    assert not same_uri("https://api.test/mcp", uri)
    assert not same_uri("https://api.test/mcp/other", uri)


def test_a_root_path_is_a_prefix_only_as_whole_segments() -> None:
    """A server that leaves root_path out of raw_path: /ab/c under root /a is /a/ab/c."""
    outside = scope(root_path="/a", path="/a/ab/c", raw_path=b"/ab/c")
    assert request_uri(outside) == "https://api.test/a/ab/c"
    inside = scope(root_path="/a", path="/a/c", raw_path=b"/a/c")
    assert request_uri(inside) == "https://api.test/a/c"


@pytest.mark.parametrize(
    ("headers", "origin"),
    [
        ([(b"forwarded", b"proto=https;host=api.test"), (b"x-forwarded-host", b"api.test")], None),
        (
            [(b"forwarded", b"proto=HTTPS;host=API.test"), (b"x-forwarded-host", b"api.test:443")],
            None,
        ),
        (
            [
                (b"forwarded", b"for=1.2.3.4"),
                (b"x-forwarded-proto", b"https"),
                (b"x-forwarded-host", b"api.test"),
            ],
            None,
        ),
        ([(b"forwarded", b"by=10.0.0.9"), (b"x-forwarded-proto", b"wss")], None),
        ([(b"forwarded", b"host=other.test"), (b"x-forwarded-host", b"api.test")], InvalidRequest),
        ([(b"forwarded", b"proto=http"), (b"x-forwarded-proto", b"https")], InvalidRequest),
        # https on 80 is no default port: another origin than api.test:443
        (
            [(b"forwarded", b'host="api.test:80"'), (b"x-forwarded-host", b"api.test:443")],
            InvalidRequest,
        ),
    ],
    ids=[
        "agree",
        "agree-normalized",
        "for-only",
        "by-only-wss",
        "hosts-differ",
        "protos-differ",
        "ports-differ",
    ],
)
def test_forwarded_and_x_forwarded_headers_must_name_one_origin(
    headers: list[tuple[bytes, bytes]], origin: type[Exception] | None
) -> None:
    """A proxy that sets one family may pass the other on from the client."""
    trusted = parse_networks(["10.0.0.0/8"])
    request = scope(headers=[(b"host", b"api.test"), *headers])
    if origin is None:
        assert normalize(request_uri(request, trusted)) == "https://api.test/mcp"
    else:
        with pytest.raises(origin, match="Forwarded and in X-Forwarded"):
            request_uri(request, trusted)


@pytest.mark.parametrize(
    ("root", "raw"), [("/", b"/mcp"), ("/api/", b"/api/mcp"), ("/api/", b"/mcp")]
)
def test_a_root_path_ending_in_a_slash_is_a_prefix_once(root: str, raw: bytes) -> None:
    base = root.rstrip("/")
    uri = request_uri(scope(root_path=root, path=base + "/mcp", raw_path=raw))
    assert uri == f"https://api.test{base}/mcp"
