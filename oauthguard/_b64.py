"""Strict base64url (RFC 7515 §2: no padding, URL-safe alphabet only), in C where it counts."""

from __future__ import annotations

import base64
import binascii

# One C pass turns base64url into standard base64 and makes every character base64url does
# not allow ('+', '/', '=') invalid, so binascii's strict mode rejects it.
_TO_STANDARD = bytes.maketrans(b"-_+/=", b"+/***")
_PADDING = (b"", b"=", b"==")  # by how many characters are missing


def b64url_decode(data: str) -> bytes:
    """Decode unpadded base64url; ``ValueError`` on any other character or a bad length."""
    raw = data.encode("ascii")  # UnicodeEncodeError is a ValueError
    pad = -len(raw) % 4
    if pad == 3:
        raise ValueError("impossible base64url length")
    try:
        return binascii.a2b_base64(raw.translate(_TO_STANDARD) + _PADDING[pad], strict_mode=True)
    except binascii.Error as exc:
        raise ValueError(str(exc)) from None


def b64url_encode(data: bytes) -> str:
    """Encode as unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
