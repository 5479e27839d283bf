"""Strict base64url (RFC 7515 §2: no padding, URL-safe alphabet only, RFC 4648 §3.5:
canonical), in C where it counts."""

from __future__ import annotations

import base64
import binascii

# One C pass turns base64url into standard base64 and makes every character base64url does
# not allow ('+', '/', '=') invalid, so binascii's strict mode rejects it.
_TO_STANDARD = bytes.maketrans(b"-_+/=", b"+/***")
_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# By the encoding's length mod 4 (1 is a length no encoding has): the padding binascii needs,
# and the characters that may end it. RFC 4648 §3.5: the bits of the last character beyond the
# data are zero, so each byte string has exactly one encoding; binascii does not check them.
# A last character after 4k+2 characters holds 2 data bits (4 unused), after 4k+3 it holds 4.
_PADDING = (b"", b"", b"==", b"=")
_LAST: tuple[frozenset[int], ...] = (
    frozenset(),  # not looked at: 4k characters end on a byte boundary
    frozenset(),
    frozenset(c for i, c in enumerate(_ALPHABET) if i % 16 == 0),  # A Q g w
    frozenset(c for i, c in enumerate(_ALPHABET) if i % 4 == 0),
)


def b64url_decode(data: str) -> bytes:
    """Decode unpadded, canonical base64url; ``ValueError`` on any other character, a bad
    length or non-zero unused bits in the last character."""
    raw = data.encode("ascii")  # UnicodeEncodeError is a ValueError
    rest = len(raw) % 4
    if rest == 1:
        raise ValueError("impossible base64url length")
    if rest and raw[-1] not in _LAST[rest]:
        raise ValueError("non-canonical base64url (unused bits of the last character set)")
    try:
        return binascii.a2b_base64(raw.translate(_TO_STANDARD) + _PADDING[rest], strict_mode=True)
    except binascii.Error as exc:
        raise ValueError(str(exc)) from None


def b64url_encode(data: bytes) -> str:
    """Encode as unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
