"""The request's URI as a DPoP proof's ``htu`` names it (RFC 9449 §4.3), and its comparison.

``normalize`` applies RFC 3986 §6.2.2 (syntax-based) and §6.2.3 (scheme-based)
normalization; ``request_uri`` rebuilds the target URI from the ASGI scope, honouring
``Forwarded`` (RFC 7239) and ``X-Forwarded-Proto``/``X-Forwarded-Host`` only from trusted
proxies, or puts the request's path under a pinned origin (``parse_origin``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from oauthguard._wire.errors import InvalidRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_DEFAULT_PORTS = {"http": 80, "https": 443}
# A WebSocket handshake is an HTTP GET to the http(s) URI (RFC 6455 §3).
_HTTP_SCHEMES = {"ws": "http", "wss": "https"}
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# RFC 3986 §2.2 reserved and §2.3 unreserved characters stay as they are; "%" starts a triplet.
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
# RFC 3986 §2: a URI has no whitespace or control characters (urlsplit would strip or drop
# them, making a string that is no URI compare equal to one).
_NOT_URI = re.compile(r"[\x00-\x20\x7f]")
# A DNS name or IPv4 address (RFC 3986 §3.2.2 reg-name without percent-encoding and
# sub-delims, which no Host header of a real server carries).
_HOST_NAME = re.compile(r"[A-Za-z0-9._~-]+")
# RFC 9110 §7.2 / RFC 3986 §3.2: a Host value, as DNS names and IP addresses are written.
_AUTHORITY = re.compile(r"(?:[A-Za-z0-9._~-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{0,5})?")


def _percent(match: re.Match[str]) -> str:
    # RFC 3986 §6.2.2.1-6.2.2.2: uppercase hex; decode octets of unreserved characters.
    char = chr(int(match.group(1), 16))
    return char if char in _UNRESERVED else "%" + match.group(1).upper()


def remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4 (used by §6.2.2.3)."""
    output: list[str] = []
    segments = path.split("/")
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == ".":
            if last:
                output.append("")
        elif segment == "..":
            if len(output) > 1:
                output.pop()
            if last:
                output.append("")
        else:
            output.append(segment)
    result = "/".join(output)
    return result if result.startswith("/") or not path.startswith("/") else "/" + result


def normalize(uri: str) -> str:
    """``scheme://host[:port]/path`` after RFC 3986 §6.2.2 and §6.2.3 normalization.

    Lowercase scheme and host, no default port, empty path as ``/``, percent-encoding
    normalized, dot segments removed. ``ValueError`` for anything that is not an absolute
    http(s) URI without userinfo, query or fragment.
    """
    if _NOT_URI.search(uri):
        raise ValueError("whitespace or a control character in a URI")
    if "?" in uri or "#" in uri:  # never silently dropped: the rest would go unread
        raise ValueError("a query or fragment")
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or "@" in parts.netloc:
        raise ValueError("not an http(s) URI without userinfo")
    port = parts.port  # ValueError for a port that is not a number in range
    host = (parts.hostname or "").lower()
    if not host:
        raise ValueError("no host")
    if ":" in host:
        host = f"[{host}]"
    authority = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = _PERCENT.sub(_percent, quote(parts.path, safe=_PATH_SAFE))
    return f"{scheme}://{authority}{remove_dot_segments(path) or '/'}"


def parse_origin(value: str) -> str:
    """The origin ``scheme://host[:port]`` (RFC 6454 §4) that ``value`` is and nothing more,
    normalized like ``normalize`` (RFC 3986 §6.2.2-6.2.3: lowercase, no default port).

    ``ValueError`` says what else ``value`` has: a path, query, fragment, user information,
    another scheme, a bad host or port.
    """
    if _NOT_URI.search(value):
        raise ValueError("contains whitespace or a control character")
    try:
        parts = urlsplit(value)
    except ValueError:  # a bracketed host that is no IP address
        raise ValueError("has a host that is not an IPv6 address in brackets") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.netloc:
        raise ValueError("is not an absolute https:// or http:// URL")
    if parts.path not in ("", "/"):
        raise ValueError(f"has a path ({parts.path!r}); the path comes from each request")
    if "?" in value or "#" in value:
        raise ValueError("has a query or fragment")
    if "@" in parts.netloc:
        raise ValueError("has user information (user@)")
    host = parts.hostname or ""
    if ":" in host:
        try:  # RFC 3986 §3.2.2: an IP-literal in brackets
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError("has a host that is not an IPv6 address in brackets") from None
    elif not _HOST_NAME.fullmatch(host):
        raise ValueError(
            "has no host, or one that is not a DNS name or IP address (give "
            "internationalized names in their ASCII xn-- form)"
        )
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise ValueError("has a port that is not a number from 1 to 65535")
    return normalize(f"{scheme}://{parts.netloc}/")[:-1]


def origin_of(url: str) -> str:
    """``scheme://authority`` of an absolute URL, as written (``parse_origin`` checks it)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """``trusted_proxies``: IP addresses or networks; ``ValueError`` names a bad one."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value, strict=False))
        except (TypeError, ValueError):
            raise ValueError(f"{value!r} is not an IP address or network") from None
    return tuple(networks)


def _trusted(address: str | None, networks: tuple[Network, ...]) -> bool:
    """Whether a peer, or an RFC 7239 §6 node (``10.0.0.1:8080``, ``[::1]:80``), is trusted."""
    if not address or not networks:
        return False
    if address.startswith("["):
        address = address[1:].partition("]")[0]
    elif address.count(":") == 1:
        address = address.partition(":")[0]
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:  # "unknown", obfuscated identifiers: never trusted
        return False
    return any(ip in network for network in networks)


def _headers(scope: Mapping[str, Any]) -> dict[bytes, list[bytes]]:
    found: dict[bytes, list[bytes]] = {}
    for name, value in scope.get("headers", ()):
        if name in (b"host", b"forwarded", b"x-forwarded-proto", b"x-forwarded-host"):
            found.setdefault(name, []).append(value)
    return found


def _forwarded_pairs(element: str) -> dict[str, str]:
    pairs = {}
    for pair in element.split(";"):
        name, _, value = pair.strip().partition("=")
        pairs[name.lower()] = value.strip().strip('"')
    return pairs


def _from_forwarded(
    values: list[bytes], networks: tuple[Network, ...]
) -> tuple[str | None, str | None]:
    """RFC 7239 §5: the element our trusted peer added is the last one; walk left while the
    proxy that added an element was itself trusted (its address is the next one's ``for``)."""
    elements = _elements_from_the_right(values)
    chosen = _forwarded_pairs(next(elements))
    while _trusted(chosen.get("for"), networks):
        element = next(elements, None)
        if element is None:
            break
        chosen = _forwarded_pairs(element)
    return chosen.get("proto"), chosen.get("host")


def _elements_from_the_right(values: list[bytes]) -> Iterator[str]:
    """RFC 7239 §4: the comma-separated elements of the Forwarded values, last first, each
    cut out when the walk reaches it: the elements a client put before our proxies' are
    never read unless trusted proxies vouch for them."""
    for value in reversed(values):
        text = value.decode("latin-1")
        end = len(text)
        while end >= 0:
            start = text.rfind(",", 0, end)
            yield text[start + 1 : end]
            end = start


def _last(values: list[bytes] | None) -> str | None:
    """The value our trusted peer set: the last of a comma-separated list."""
    if not values:
        return None
    return values[-1].rpartition(b",")[2].decode("latin-1").strip() or None


def request_uri(
    scope: Mapping[str, Any], trusted_proxies: tuple[Network, ...] = (), origin: str | None = None
) -> str:
    """``scheme://host/root_path/path`` of this request, without query (RFC 9449 §4.3).

    With ``origin`` (from ``parse_origin``), that is the scheme and host, whatever the
    request's Host and forwarding headers say; the path is always the request's.
    """
    root = scope.get("root_path", "")
    raw: bytes | None = scope.get("raw_path")
    if raw:
        path = raw.partition(b"?")[0].decode("latin-1")
    else:
        path = quote(scope.get("path", ""), safe=_PATH_SAFE)
    # Servers that leave root_path out of the path; a prefix only as whole segments.
    base = root.rstrip("/")
    if base and not (path.startswith(base) and path[len(base) : len(base) + 1] in ("/", "")):
        path = quote(base, safe=_PATH_SAFE) + path
    return (origin or _request_origin(scope, trusted_proxies)) + path


def _request_origin(scope: Mapping[str, Any], trusted_proxies: tuple[Network, ...]) -> str:
    """The scheme and host the request names: its own, or a trusted proxy's (RFC 7239)."""
    scheme = _http_scheme(scope.get("scheme", "http"))
    client = scope.get("client")
    if not _trusted(client[0] if client else None, trusted_proxies):
        # No proxy to believe: only the first Host header counts, so no other is gathered.
        return f"{scheme}://{_host_or_server(scope, _first_host(scope))}"
    headers = _headers(scope)
    host_values = headers.get(b"host")
    host = host_values[0].decode("latin-1") if host_values else None
    x_forwarded = (
        _last(headers.get(b"x-forwarded-proto")),
        _last(headers.get(b"x-forwarded-host")),
    )
    if b"forwarded" not in headers:
        proto, forwarded_host = x_forwarded
    else:
        proto, forwarded_host = _from_forwarded(headers[b"forwarded"], trusted_proxies)
        # A proxy that sets one family may pass the other on from the client as it came:
        # what both name must agree, or which one is the proxy's is unknown (and the server
        # may read the other).
        if _name_two_origins((proto, forwarded_host), x_forwarded):
            raise InvalidRequest(
                "the request names its origin in Forwarded and in X-Forwarded-* headers, "
                "differently"
            )
        proto, forwarded_host = proto or x_forwarded[0], forwarded_host or x_forwarded[1]
    if proto:
        proto = _http_scheme(proto)  # a proxy's wss is https
    scheme, host = proto or scheme, forwarded_host or host
    return f"{scheme}://{_host_or_server(scope, host)}"


def _http_scheme(value: str) -> str:
    """A scheme as a URL names it, lowercase; a WebSocket's as its HTTP one (RFC 6455 §3)."""
    value = value.lower()
    return _HTTP_SCHEMES.get(value, value)


def _name_two_origins(
    forwarded: tuple[str | None, str | None], x_forwarded: tuple[str | None, str | None]
) -> bool:
    """Whether what both header families name, proto or host, differs; hosts compared as
    ``normalize`` compares URIs (case, and the scheme's default port, do not count)."""
    (proto, host), (x_proto, x_host) = forwarded, x_forwarded
    if proto and x_proto and _http_scheme(proto) != _http_scheme(x_proto):
        return True
    if not host or not x_host:
        return False
    scheme = _http_scheme(proto or x_proto or "https")
    try:
        return normalize(f"{scheme}://{host}/") != normalize(f"{scheme}://{x_host}/")
    except ValueError:  # no host at all: two different things
        return True


def _first_host(scope: Mapping[str, Any]) -> bytes | None:
    for name, value in scope.get("headers", ()):
        if name == b"host":
            return value  # type: ignore[no-any-return]
    return None


def _host_or_server(scope: Mapping[str, Any], host: bytes | str | None) -> str:
    """The Host header's value (or a trusted proxy's), or else the server's address (ASGI
    ``server``). RFC 9110 §7.2: a host and port and nothing else, or a path in it would
    move the path a proof must name."""
    if host is not None:
        value = host.decode("latin-1") if isinstance(host, bytes) else host
        if not is_authority(value):
            raise InvalidRequest("the request's host is not a host name or address and a port")
        return value
    server = scope.get("server") or ("localhost", None)
    return server[0] if server[1] is None else f"{server[0]}:{server[1]}"


def is_authority(value: str) -> bool:
    """RFC 9110 §7.2: ``value`` is a host (DNS name, IPv4 or bracketed IPv6) and an optional
    port, and nothing else."""
    return _AUTHORITY.fullmatch(value) is not None


def same_uri(htu: str, request: str) -> bool:
    """RFC 9449 §4.3: compare after RFC 3986 §6.2.2/§6.2.3 normalization."""
    if htu == request:
        return True
    try:
        return normalize(htu) == normalize(request)
    except ValueError:
        return False
