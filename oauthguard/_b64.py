"""Strict base64url (RFC 7515 §2: no padding, URL-safe alphabet only), in C where it counts."""

from __future__ import annotations

import base64
import binascii
import re

_ALPHABET = re.compile(r"[A-Za-z0-9_-]*")
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")  # bytes.translate: far cheaper than str's


def b64url_decode(data: str) -> bytes:
    """Decode unpadded base64url; ``ValueError`` on any other character or a bad length."""
    if _ALPHABET.fullmatch(data) is None:
        raise ValueError("not base64url")
    pad = -len(data) % 4
    if pad == 3:
        raise ValueError("impossible base64url length")
    try:
        return binascii.a2b_base64(data.encode("ascii").translate(_TO_STANDARD) + b"=" * pad,
                                   strict_mode=True)
    except binascii.Error as exc:
        raise ValueError(str(exc)) from None


def b64url_encode(data: bytes) -> str:
    """Encode as unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
