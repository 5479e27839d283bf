"""Errors raised inside the guard, each mapped to an OAuth error code and an HTTP status.

RFC 6750 §3.1 (invalid_request, invalid_token, insufficient_scope), RFC 9449 §7.1
(invalid_dpop_proof, use_dpop_nonce), RFC 9470 §3 (insufficient_user_authentication).
"""

from __future__ import annotations

#: Where the documentation lives: log lines and messages link to its pages from here.
DOCS_URL = "https://oauthguard.readthedocs.io/en/latest/"
TROUBLESHOOTING = DOCS_URL + "troubleshooting/#"


class ConfigurationError(ValueError):
    """The guard was configured with a value it cannot work with.

    Raised at construction, never per request. The message names the argument.
    """


class StartupError(RuntimeError):
    """The resource server cannot start: raised by ``ResourceServer.warm()`` (on entering
    ``async with``, or on ASGI lifespan startup) when ``JWT(require_keys_at_startup=True)``
    and no issuer's signing keys could be fetched."""


class GuardError(Exception):
    """A request was refused. Carries everything the challenge needs.

    ``error`` is the OAuth error code (``None`` for a request with no credentials at all),
    ``status`` the HTTP status and ``description`` a human-readable reason that never
    contains token content.
    """

    error: str | None = None
    status: int = 401
    #: The scheme whose challenge carries the error when it is not the one the request used:
    #: ``"both"`` for an ambiguous request, ``"Bearer"``/``"DPoP"`` where none was read yet.
    scheme: str | None = None
    #: What the refusal's log line adds to ``description`` (never sent to the client):
    #: what the token carried beside what was expected, bounded and escaped.
    detail: str = ""
    #: The section of the troubleshooting page that explains refusals of this kind.
    docs: str = TROUBLESHOOTING + "no-error"

    def __init__(self, description: str = "", *, scheme: str | None = None, **params: str) -> None:
        super().__init__(description)
        self.description = description
        if scheme is not None:
            self.scheme = scheme
        #: Extra challenge parameters (``scope``, ``acr_values``, ``max_age``, ``algs``).
        self.params = params

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description!r})"


class MissingCredentials(GuardError):
    """No credentials (or another scheme): a challenge without ``error`` (RFC 6750 §3.1)."""

    error = None
    status = 401


class InvalidRequest(GuardError):
    """Malformed request: duplicated or unparsable credentials (RFC 6750 §3.1)."""

    error = "invalid_request"
    status = 400
    docs = TROUBLESHOOTING + "invalid_request"


class InvalidToken(GuardError):
    """Expired, revoked, malformed or otherwise invalid token (RFC 6750 §3.1)."""

    error = "invalid_token"
    status = 401
    docs = TROUBLESHOOTING + "invalid_token"


class InsufficientScope(GuardError):
    """The token lacks scopes the operation needs (RFC 6750 §3.1)."""

    error = "insufficient_scope"
    status = 403
    docs = TROUBLESHOOTING + "insufficient_scope"


class InsufficientUserAuthentication(GuardError):
    """The user must authenticate again, more strongly or more recently (RFC 9470 §3)."""

    error = "insufficient_user_authentication"
    status = 401
    docs = TROUBLESHOOTING + "insufficient_user_authentication"


class InvalidDPoPProof(GuardError):
    """The DPoP proof is missing or invalid (RFC 9449 §7.1)."""

    error = "invalid_dpop_proof"
    status = 401
    scheme = "DPoP"
    docs = TROUBLESHOOTING + "invalid_dpop_proof"


class UseDPoPNonce(GuardError):
    """The proof must carry a server-provided nonce (RFC 9449 §8, §9).

    ``nonce`` is the fresh one sent back in the ``DPoP-Nonce`` header.
    """

    error = "use_dpop_nonce"
    status = 401
    scheme = "DPoP"
    docs = TROUBLESHOOTING + "use_dpop_nonce"

    def __init__(self, description: str = "", *, nonce: str, **params: str) -> None:
        super().__init__(description, **params)
        self.nonce = nonce


class TemporarilyUnavailable(GuardError):
    """Keys, metadata or introspection cannot be reached: 503 with Retry-After, never 401."""

    error = "temporarily_unavailable"
    status = 503
    docs = TROUBLESHOOTING + "temporarily_unavailable"

    def __init__(
        self,
        description: str = "",
        retry_after: int = 5,
        *,
        scheme: str | None = None,
        **params: str,
    ) -> None:
        super().__init__(description, scheme=scheme, **params)
        self.retry_after = retry_after
