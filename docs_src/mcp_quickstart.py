from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import MCPServer

from oauthguard.mcp import protect

server = MCPServer("notes")


@server.tool()
def list_notes() -> list[str]:
    return ["a note"]


@server.tool()
def add_note(text: str) -> str:
    token = get_access_token()  # the token oauthguard validated
    return f"added by {token.subject if token else '?'}"


app = protect(  # uvicorn module:app
    server.streamable_http_app(),
    resource="https://notes.example.com/mcp",  # the endpoint URL, exactly as clients use it
    authorization_servers="https://as.example.com",
    scopes="notes:read",  # what every request to the endpoint needs
    tool_scopes={"add_note": "notes:write"},  # what calling this tool needs on top
)
