"""URL checks shared by discovery, keys and configuration."""

from __future__ import annotations

import ipaddress
import os
from urllib.parse import urlsplit

#: The environment variable that permits plain-http URLs on every host (as in oauthlib).
INSECURE_HTTP = "OAUTHGUARD_INSECURE_HTTP"


def insecure_http() -> bool:
    """Whether ``OAUTHGUARD_INSECURE_HTTP=1`` permits plain http on every host."""
    return os.environ.get(INSECURE_HTTP, "") == "1"


def is_insecure(url: str) -> bool:
    """An http URL on a host other than loopback (which is allowed without opting in)."""
    return urlsplit(url).scheme == "http" and not https_or_loopback(url)


def is_loopback_host(host: str | None) -> bool:
    """``localhost``, 127.0.0.0/8 or ::1."""
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def https_or_loopback(url: str) -> bool:
    """True for https URLs, and for http only on loopback hosts (local development, tests)."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return bool(parts.hostname)
    return parts.scheme == "http" and is_loopback_host(parts.hostname)


def fetchable(url: str) -> bool:
    """https, http on loopback, or http anywhere with ``OAUTHGUARD_INSECURE_HTTP=1``."""
    return https_or_loopback(url) or (is_insecure(url) and insecure_http())
