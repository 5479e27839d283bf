from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer

from oauthguard.mcp import MCPTokenVerifier

server = MCPServer(
    "notes",
    token_verifier=MCPTokenVerifier(
        resource="https://notes.example.com/mcp",
        authorization_servers="https://as.example.com",
    ),
    auth=AuthSettings(
        issuer_url="https://as.example.com",
        resource_server_url="https://notes.example.com/mcp",
        required_scopes=["notes:read"],
        validate_token_resource=False,  # MCPTokenVerifier checks the audience itself
    ),
)
app = server.streamable_http_app()
