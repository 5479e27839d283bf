from functools import partial

from mcp.server.mcpserver import MCPServer

from oauthguard import DPoP, OAuthGuard, ResourceServer, require
from oauthguard.mcp import MCPAuth, MCPUser

notes = MCPServer("notes")


@notes.tool()
def add_note(text: str) -> str:
    return "added"


server = ResourceServer(
    resource="https://notes.example.com/mcp",
    authorization_servers=["https://as.example.com"],
    dpop=DPoP(public_origin="https://notes.example.com"),  # DPoP htu pinned to the origin
    user_factory=partial(MCPUser, resource="https://notes.example.com/mcp"),  # once per token
)
app = OAuthGuard(
    MCPAuth(notes.streamable_http_app(), tool_scopes={"add_note": "notes:write"}),
    server,
    rules={"/mcp": require("notes:read")},  # the endpoint's scopes, named in every 401
    public_paths=["/.well-known/*"],
)
