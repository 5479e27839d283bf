"""``DPoPNonces``: stateless server-provided DPoP nonces (RFC 9449 §8, §9)."""

from __future__ import annotations

import hashlib
import hmac
import math
import struct

from oauthguard._jose.b64 import b64url_decode, b64url_encode
from oauthguard._wire.errors import ConfigurationError

_CONTEXT = b"oauthguard DPoP nonce v1\x00"
_MAC_BYTES = 16


class DPoPNonces:
    """Nonces that any worker or host sharing ``secret`` accepts, with no shared storage.

    A nonce is the number of the ``lifetime``-long time window it was issued in, with an
    HMAC-SHA256 of that number under ``secret``. It is accepted during its own window and
    the next one, so it lives between ``lifetime`` and twice that. Clients get a fresh one
    on a successful response once theirs is from the previous window.

    >>> nonces = DPoPNonces(secret=os.environ["DPOP_NONCE_SECRET"], lifetime=300)
    """

    def __init__(self, *, secret: str | bytes, lifetime: float = 300) -> None:
        key = secret.encode() if isinstance(secret, str) else secret
        if not isinstance(key, bytes) or len(key) < 16:
            raise ConfigurationError(
                "DPoPNonces(secret=...) needs at least 16 bytes of secret; share the same "
                "secret across workers and hosts (for example from an environment variable)"
            )
        if (
            isinstance(lifetime, bool)
            or not isinstance(lifetime, int | float)
            or not 1 <= lifetime <= 86400
        ):
            raise ConfigurationError("DPoPNonces(lifetime=...) must be 1 to 86400 seconds")
        self._key = hmac.new(key, _CONTEXT, hashlib.sha256).digest()
        self.lifetime = float(lifetime)

    def _window(self, now: float) -> int:
        return math.floor(now / self.lifetime)

    def _mac(self, window: bytes) -> bytes:
        return hmac.new(self._key, window, hashlib.sha256).digest()[:_MAC_BYTES]

    def issue(self, now: float) -> str:
        """A nonce for the current time window."""
        window = struct.pack(">q", self._window(now))
        return b64url_encode(window + self._mac(window))

    def age(self, nonce: object, now: float) -> int | None:
        """0 for a nonce of the current window, 1 for the previous one; None when the nonce
        is malformed, forged or stale (RFC 9449 §9: the client must get a new one)."""
        if not isinstance(nonce, str) or len(nonce) != 32:
            return None
        try:
            raw = b64url_decode(nonce)
        except ValueError:
            return None
        window, mac = raw[:8], raw[8:]
        if not hmac.compare_digest(mac, self._mac(window)):
            return None
        age = self._window(now) - struct.unpack(">q", window)[0]
        return age if age in (0, 1) else None


Headers = list[tuple[bytes, bytes]]


def check_nonces(value: object) -> DPoPNonces | None:
    """``DPoP(nonces=...)``: ``False`` (no nonces) or a ``DPoPNonces``."""
    if value is False or value is None:
        return None
    if not isinstance(value, DPoPNonces):
        raise ConfigurationError(
            "DPoP(nonces=...) must be False or DPoPNonces(secret=..., lifetime=...); the secret is "
            "shared by every worker and host so that each accepts the others' nonces"
        )
    return value


def nonce_headers(headers: Headers, nonce: str) -> Headers:
    """RFC 9449 §8.2/§9: a response's headers with a fresh nonce, never cached (§8.1), and
    readable by browser clients."""
    kept: Headers = []
    exposed: list[bytes] = []
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"access-control-expose-headers":
            exposed.append(bytes(value))
        elif lowered not in (b"cache-control", b"dpop-nonce"):
            kept.append((name, value))
    exposed.append(b"DPoP-Nonce, WWW-Authenticate")
    return kept + [
        (b"dpop-nonce", nonce.encode("ascii")),
        (b"cache-control", b"no-store"),
        (b"access-control-expose-headers", b", ".join(exposed)),
    ]
