"""What the logs say about tokens: a SHA-256 prefix, never the token or its parts."""

from __future__ import annotations

import hashlib
import logging
import traceback

from oauthguard._wire.credentials import Credentials
from oauthguard._wire.errors import GuardError, TemporarilyUnavailable

logger = logging.getLogger("oauthguard")


def token_digest(token: str) -> str:
    """What the logs say instead of a token: a SHA-256 prefix."""
    # surrogatepass: bytes read as lone surrogates (PEP 383: argv, a C-locale stdin) get a
    # digest too, instead of an error; any other string's is the same as without it.
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def redacted_traceback(exc: BaseException, token: str | None) -> str:
    """The traceback of ``exc`` for the log, with the token and its parts replaced by its
    digest (an exception message may quote what it failed on)."""
    text = "".join(traceback.format_exception(exc))
    if token:
        for secret in sorted({token, *token.split(".")}, key=len, reverse=True):
            if len(secret) >= 16:
                text = text.replace(secret, f"<token sha256:{token_digest(token)}>")
    return text


def unexpected(exc: Exception, path: str, credentials: Credentials | None) -> GuardError:
    """Log an unexpected failure while checking a request (the token redacted) and give
    the refusal that answers it: 503, never a 500 or a pass."""
    logger.error(
        "unexpected error while checking a request to %r\n%s",
        path,
        redacted_traceback(exc, credentials.token if credentials else None),
    )
    return TemporarilyUnavailable("the access token could not be checked; try again later")
