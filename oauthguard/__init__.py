"""oauthguard: a correct, fast OAuth 2 resource server for any ASGI app."""

from oauthguard.errors import (
    ConfigurationError,
    GuardError,
    InsufficientScope,
    InsufficientUserAuthentication,
    InvalidDPoPProof,
    InvalidRequest,
    InvalidToken,
    MissingCredentials,
    TemporarilyUnavailable,
    UseDPoPNonce,
)
from oauthguard.introspection import Introspection
from oauthguard.middleware import OAuthGuard
from oauthguard.nonces import DPoPNonces
from oauthguard.policy import require
from oauthguard.replay import ReplayStore
from oauthguard.server import ResourceServer
from oauthguard.settings import JWT, DPoP, Issuer, Limits, Metadata
from oauthguard.tokens import AccessToken, TokenVerifier

__version__ = "0.1.0"

__all__ = [
    "JWT",
    "AccessToken",
    "ConfigurationError",
    "DPoP",
    "DPoPNonces",
    "GuardError",
    "InsufficientScope",
    "InsufficientUserAuthentication",
    "Introspection",
    "InvalidDPoPProof",
    "InvalidRequest",
    "InvalidToken",
    "Issuer",
    "Limits",
    "Metadata",
    "MissingCredentials",
    "OAuthGuard",
    "ReplayStore",
    "ResourceServer",
    "TemporarilyUnavailable",
    "TokenVerifier",
    "UseDPoPNonce",
    "require",
]
