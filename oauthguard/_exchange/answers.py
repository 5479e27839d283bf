"""What a token endpoint's answer to an exchange means: a token, a refusal, or no answer.

RFC 8693 §2.2.1 (the issued token), §2.2.2 and RFC 6749 §5.2 (errors). A refusal of the
exchange itself (``invalid_target``, ``invalid_scope``, ``invalid_grant``, ...) is
``ExchangeRefused``: a 403 the caller can show. Anything else that leaves us without a
token (the endpoint unreachable or failing, our own credentials refused, an answer we
cannot read) is ``ExchangeUnavailable``, a 503: the caller did nothing wrong.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from oauthguard._http.breaker import parse_retry_after
from oauthguard._http.fetch import Fetched
from oauthguard._wire.credentials import is_b64token
from oauthguard._wire.errors import TROUBLESHOOTING, GuardError, TemporarilyUnavailable
from oauthguard._wire.tokens import is_scope_string

TOKEN_TYPE_PREFIX = "urn:ietf:params:oauth:token-type:"
#: RFC 8693 §3: the token type identifiers.
ACCESS_TOKEN_TYPE = TOKEN_TYPE_PREFIX + "access_token"
JWT_TOKEN_TYPE = TOKEN_TYPE_PREFIX + "jwt"
#: The issued token types usable as an access token downstream (RFC 8693 §3).
USABLE_TYPES = frozenset({ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE})
CREDENTIAL_SETTINGS = "TokenExchange(client_id=, client_secret=/private_key=, auth_method=)"
DPOP_SETTING = "TokenExchange(dpop_key=) and the token endpoint's DPoP-Nonce"
#: The longest ``error`` code passed on (RFC 6749 §5.2's and RFC 8693's are under 30).
MAX_ERROR_CODE = 64
#: The longest text taken from the authorization server's error description.
MAX_DESCRIPTION = 300

# The request never reached the server (or our own pool is exhausted).
_UNREACHABLE = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
)


class DPoPSigner(Protocol):
    """A DPoP key that makes proofs (RFC 9449 §4.2), such as ``oauthguard.testing.DPoPKey``:
    ``proof(method, url, token=..., nonce=...)`` is a signed proof JWT for one request."""

    def proof(
        self, method: str, url: str, *, token: str | None = None, nonce: str | None = None
    ) -> str: ...


@dataclass(frozen=True, slots=True)
class ExchangedToken:
    """A token the authorization server issued for a downstream API (RFC 8693 §2.2.1).

    ``token_type`` is ``"Bearer"`` or ``"DPoP"`` (then ``dpop_key`` made its proofs and
    makes the downstream ones); ``expires_at`` is in seconds since the epoch (None when the
    server did not say); ``scope`` the scopes granted; ``issued_token_type`` the RFC 8693
    §3 type of ``access_token``. ``headers(method, url)`` are the headers of one downstream
    request. The token itself is never in the repr.
    """

    access_token: str = field(repr=False)
    token_type: str
    expires_at: float | None
    scope: str | None
    issued_token_type: str
    dpop_key: DPoPSigner | None = field(default=None, repr=False, compare=False)

    def headers(self, method: str, url: str, *, nonce: str | None = None) -> dict[str, str]:
        """``Authorization`` for a request (``DPoP`` with a fresh proof for a bound token,
        RFC 9449 §7.1; ``Bearer`` otherwise, RFC 6750 §2.1)."""
        if self.token_type == "DPoP" and self.dpop_key is not None:
            proof = self.dpop_key.proof(
                method,
                url.partition("?")[0].partition("#")[0],
                token=self.access_token,
                nonce=nonce,
            )
            return {"authorization": f"DPoP {self.access_token}", "dpop": proof}
        return {"authorization": f"Bearer {self.access_token}"}


class ExchangeRefused(GuardError):
    """The authorization server refused the exchange (RFC 8693 §2.2.2, RFC 6749 §5.2).

    ``code`` is its ``error`` (``invalid_target``, ``invalid_scope``, ``invalid_grant``,
    ``unauthorized_client``, Entra's ``interaction_required``, ...), ``server_description``
    its ``error_description`` (bounded, printable ASCII), ``claims`` an Entra claims
    challenge when it sent one. Raised out of a route, the guard answers 403
    ``insufficient_scope``: the caller's token cannot be used for what the operation needs.
    """

    error = "insufficient_scope"
    status = 403
    docs = TROUBLESHOOTING + "token-exchange"

    def __init__(
        self,
        code: str,
        server_description: str = "",
        *,
        target: str = "",
        claims: str | None = None,
    ) -> None:
        said = f" ({server_description})" if server_description else ""
        where = f" for {target}" if target else ""
        super().__init__(
            f"the authorization server refused to exchange the token{where}: {code}{said}",
            scope="",
        )
        self.code = code
        self.server_description = server_description
        self.target = target
        self.claims = claims


class ExchangeUnavailable(TemporarilyUnavailable):
    """No token from the exchange, through no fault of the caller: a 503 saying ``summary``;
    ``reason`` and ``setting`` are for the log. ``per_request``: one odd request could
    cause it (the server hangs, fails or answers garbage on it), so the breaker counts it
    once per distinct request; ``wait``: the seconds the server's ``Retry-After`` asked for."""

    docs = TROUBLESHOOTING + "token-exchange"

    def __init__(
        self,
        summary: str,
        reason: str,
        setting: str = "TokenExchange(token_endpoint=) or the issuer's metadata",
        retry_after: int = 5,
        *,
        per_request: bool = False,
        wait: float = 0.0,
    ) -> None:
        super().__init__(
            f"the token could not be exchanged: the token endpoint {summary}",
            retry_after=retry_after,
        )
        self.summary = summary
        self.reason = reason
        self.setting = setting
        self.per_request = per_request
        self.wait = wait


def transport_failure(exc: httpx.HTTPError, timeout: float) -> ExchangeUnavailable:
    """No answer: unreachable (no request could cause it), or silent or gone once the
    request was sent (one odd request could)."""
    if isinstance(exc, _UNREACHABLE):
        return ExchangeUnavailable("is unreachable", f"{type(exc).__name__}: {exc}")
    if isinstance(exc, httpx.TimeoutException):
        return ExchangeUnavailable(
            "timed out",
            f"no answer within {timeout:g}s",
            "TokenExchange(timeout=)",
            per_request=True,
        )
    return ExchangeUnavailable("is unreachable", f"{type(exc).__name__}: {exc}", per_request=True)


def printable_text(value: object) -> str:
    """Text of the server's for a message: printable ASCII only, bounded."""
    if not isinstance(value, str):
        return ""
    text = "".join(c for c in value[: MAX_DESCRIPTION * 2] if " " <= c <= "~")
    return text[:MAX_DESCRIPTION]


def json_object(body: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return document if isinstance(document, dict) else None


def error_answer(response: Fetched, target: str, now: float) -> GuardError:
    """What a status other than 200 means (RFC 6749 §5.2: errors are 400, or 401 for
    client authentication)."""
    status = response.status_code
    document = json_object(response.body) if status in (400, 401, 403) else None
    code = document.get("error") if document is not None else None
    if status == 401 or code == "invalid_client":
        # RFC 6749 §5.2: our client authentication failed, whatever the caller's token.
        return ExchangeUnavailable(
            "refused our client credentials",
            f"HTTP {status} {printable_text(code) or ''}".rstrip(),
            CREDENTIAL_SETTINGS,
        )
    if (
        isinstance(code, str)
        and 0 < len(code) <= MAX_ERROR_CODE
        and is_scope_string(code)
        and " " not in code
    ):
        if code in ("temporarily_unavailable", "server_error"):
            return ExchangeUnavailable(f"answered {code}", f"HTTP {status} {code}")
        if code in ("use_dpop_nonce", "invalid_dpop_proof"):
            # RFC 9449 §5, §8: our proof is refused (its nonce, even after the one retry),
            # not the caller's token.
            return ExchangeUnavailable(
                f"refused our DPoP proof ({code})", f"HTTP {status} {code}", DPOP_SETTING
            )
        described = printable_text(document.get("error_description")) if document else ""
        claims = document.get("claims") if document else None
        return ExchangeRefused(
            code,
            described,
            target=target,
            claims=claims if _header_safe(claims) else None,
        )
    wait = parse_retry_after(response.headers.get("retry-after"), now)
    # parse_retry_after gives infinity for a delay past any pause: bounded before int()
    retry_after = max(1, int(min(wait, 300)) or 5)
    return ExchangeUnavailable(
        f"answered HTTP {status}",
        f"HTTP {status} without an RFC 6749 error",
        retry_after=retry_after,
        # RFC 6585 §4: 429 is about us, whatever we send; a 5xx or an unreadable 400 may be
        # one odd request the server fails on.
        per_request=status != 429 and (status >= 500 or status == 400),
        wait=wait,
    )


def _header_safe(claims: object) -> bool:
    """An Entra claims challenge goes back to the client in a header (base64 in its
    WWW-Authenticate): bounded, printable ASCII only (RFC 9110 §5.5)."""
    return (
        isinstance(claims, str) and len(claims) < 4096 and claims.isascii() and claims.isprintable()
    )


def malformed(reason: str) -> ExchangeUnavailable:
    return ExchangeUnavailable("sent a malformed answer", reason, per_request=True)


def read_issued(
    members: Mapping[str, Any],
    *,
    now: float,
    requested_scope: str | None,
    issued_type_required: bool,
    dpop_key: DPoPSigner | None,
) -> ExchangedToken:
    """RFC 8693 §2.2.1: the members of a successful answer, checked; ``malformed`` else."""
    token = members.get("access_token")
    # RFC 6750 §2.1 / RFC 9449 §7.1: it goes in Authorization as one b64token (token68).
    if not isinstance(token, str) or not token.isascii() or not is_b64token(token.encode()):
        raise malformed("no access_token string in the answer")
    issued_type = members.get("issued_token_type")
    if issued_type is None and not issued_type_required:
        issued_type = ACCESS_TOKEN_TYPE  # Entra's on-behalf-of answers name none
    if not isinstance(issued_type, str) or issued_type not in USABLE_TYPES:
        # RFC 8693 §2.2.1: REQUIRED; anything but an access token or JWT is no access token.
        raise malformed(f"issued_token_type {printable_text(str(issued_type))[:80]!r}")
    token_type = members.get("token_type")
    # RFC 6749 §7.1 / RFC 9449 §5: the scheme is case-insensitive.
    scheme = token_type.lower() if isinstance(token_type, str) else None
    if scheme not in ("bearer", "dpop") or (scheme == "dpop" and dpop_key is None):
        raise malformed(f"token_type {printable_text(str(token_type))[:40]!r}")
    lifetime = members.get("expires_in")
    # RFC 6749 §5.1: a lifetime in seconds; Python's json also reads NaN, Infinity and
    # integers past any float, none of them a lifetime (and the last not even a float).
    if lifetime is not None and (
        isinstance(lifetime, bool)
        or not isinstance(lifetime, (int, float))
        or not 0 < lifetime <= sys.float_info.max
    ):
        raise malformed("expires_in is not a positive, finite number of seconds")
    scope = members.get("scope", requested_scope)  # §2.2.1: absent means as requested
    if scope is not None and not (isinstance(scope, str) and is_scope_string(scope)):
        raise malformed("scope is not an RFC 6749 §3.3 scope string")
    return ExchangedToken(
        token,
        "DPoP" if scheme == "dpop" else "Bearer",
        None if lifetime is None else now + float(lifetime),
        scope,
        str(issued_type),
        dpop_key if scheme == "dpop" else None,
    )
