"""``require(...)``: what one operation needs from the access token.

One object, four uses: a Starlette endpoint decorator, a FastAPI dependency, a path rule on
the guard (``OAuthGuard(..., rules={"/admin": require("admin")})``) and an MCP tool's entry
in ``tool_scopes``. Every refusal is answered by the guard in front of the app, so
challenges are the same everywhere.
"""

from oauthguard._policy.requirement import Requirement, require
from oauthguard._policy.rules import build_rules
from oauthguard._policy.scopes import (
    NO_IMPLICATIONS,
    build_implications,
    granted_scopes,
    scope_list,
)

__all__ = [
    "NO_IMPLICATIONS",
    "Requirement",
    "build_implications",
    "build_rules",
    "granted_scopes",
    "require",
    "scope_list",
]
