"""oauthguard: a correct, fast OAuth 2 resource server for any ASGI app."""

from oauthguard._asgi.guard import OAuthGuard
from oauthguard._core.server import ResourceServer
from oauthguard._core.settings import JWT, DPoP, Issuer, Limits, Metadata
from oauthguard._dpop.nonces import DPoPNonces
from oauthguard._dpop.replay import MemoryReplayStore, ReplayStore
from oauthguard._introspection.settings import Introspection
from oauthguard._introspection.shared import IntrospectionCache, MemoryIntrospectionCache
from oauthguard._policy import require
from oauthguard._wire.errors import (
    ConfigurationError,
    GuardError,
    InsufficientScope,
    InsufficientUserAuthentication,
    InvalidDPoPProof,
    InvalidRequest,
    InvalidToken,
    MissingCredentials,
    StartupError,
    TemporarilyUnavailable,
    UseDPoPNonce,
)
from oauthguard._wire.tokens import AccessToken, Actor, TokenVerifier

__version__ = "0.1.0"

__all__ = [
    "JWT",
    "AccessToken",
    "Actor",
    "ConfigurationError",
    "DPoP",
    "DPoPNonces",
    "GuardError",
    "InsufficientScope",
    "InsufficientUserAuthentication",
    "Introspection",
    "IntrospectionCache",
    "InvalidDPoPProof",
    "InvalidRequest",
    "InvalidToken",
    "Issuer",
    "Limits",
    "MemoryIntrospectionCache",
    "MemoryReplayStore",
    "Metadata",
    "MissingCredentials",
    "OAuthGuard",
    "ReplayStore",
    "ResourceServer",
    "StartupError",
    "TemporarilyUnavailable",
    "TokenVerifier",
    "UseDPoPNonce",
    "require",
]
