// The MCP TypeScript SDK's client with its client credentials provider: logs in to an MCP
// server as a machine client (no user, no redirect) and calls tools; prints JSON.
// Usage: node client_credentials.mjs <MCP endpoint URL> <issuer> <client id> <secret> <scope>
//        <tool>...
// This SDK's client credentials grant asks for the scope it is configured with (not the one
// a challenge names), so the scope comes from the command line.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { ClientCredentialsProvider } from "@modelcontextprotocol/sdk/client/auth-extensions.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [endpoint, issuer, clientId, clientSecret, scope, ...tools] = process.argv.slice(2);
const provider = new ClientCredentialsProvider({ clientId, clientSecret, scope,
                                                 expectedIssuer: issuer });
const statuses = [];
const recordingFetch = async (input, init) => {
  const response = await fetch(input, init);
  statuses.push(`${init?.method ?? "GET"} ${new URL(input).pathname} ${response.status}`);
  return response;
};

const transport = new StreamableHTTPClientTransport(new URL(endpoint), {
  authProvider: provider, fetch: recordingFetch });
const client = new Client({ name: "oauthguard-ts-machine", version: "1.0.0" });
await client.connect(transport);
const results = {};
for (const tool of tools) {
  try {
    const result = await client.callTool({ name: tool, arguments: {} });
    results[tool] = result.structuredContent?.result ?? result.content?.[0]?.text;
  } catch (error) {
    results[tool] = { error: String(error) };
  }
}
await client.close();
console.log(JSON.stringify({ results, statuses, token: provider.tokens()?.access_token }));
