// The MCP TypeScript SDK's client logs in to an MCP server and calls tools; prints JSON.
// Usage: node client.mjs <mcp endpoint URL> <tool>...
// The authorization server approves at once, so "redirecting the user" is fetching the
// authorization URL and reading the code from the redirect, as a browser would.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";

const url = new URL(process.argv[2]);
const tools = process.argv.slice(3);

class Provider {
  constructor() { this.authorizations = []; this.statuses = []; }
  get redirectUrl() { return "http://127.0.0.1:9/callback"; }
  // No refresh_token grant: on a 403 this SDK refreshes first, and a refresh can never widen
  // the scope (RFC 6749 §6), so the step-up would stop there instead of re-authorizing.
  get clientMetadata() {
    return { client_name: "oauthguard ts test", redirect_uris: [this.redirectUrl],
             grant_types: ["authorization_code"], response_types: ["code"],
             token_endpoint_auth_method: "client_secret_post" };
  }
  clientInformation() { return this.client; }
  saveClientInformation(client) { this.client = client; }
  tokens() { return this.savedTokens; }
  saveTokens(tokens) { this.savedTokens = tokens; }
  saveCodeVerifier(verifier) { this.verifier = verifier; }
  codeVerifier() { return this.verifier; }
  async redirectToAuthorization(authorizationUrl) {
    this.authorizations.push(Object.fromEntries(authorizationUrl.searchParams));
    const response = await fetch(authorizationUrl, { redirect: "manual" });
    const back = new URL(response.headers.get("location"));
    if (back.searchParams.get("state") !== authorizationUrl.searchParams.get("state")) {
      throw new Error("state mismatch");
    }
    this.code = back.searchParams.get("code");
  }
}

const provider = new Provider();
const recordingFetch = async (input, init) => {
  const response = await fetch(input, init);
  provider.statuses.push(`${init?.method ?? "GET"} ${new URL(input).pathname} ${response.status}`);
  return response;
};

async function connect() {
  for (let attempt = 0; attempt < 2; attempt++) {
    const transport = new StreamableHTTPClientTransport(url, { authProvider: provider,
                                                              fetch: recordingFetch });
    const client = new Client({ name: "oauthguard-ts", version: "1.0.0" });
    try {
      await client.connect(transport);
      return [client, transport];
    } catch (error) {
      if (!(error instanceof UnauthorizedError)) throw error;
      await transport.finishAuth(provider.code);
    }
  }
  throw new Error("could not connect");
}

async function call(client, transport, name) {
  try {
    return await client.callTool({ name, arguments: {} });
  } catch (error) {
    if (!(error instanceof UnauthorizedError)) throw error;
    await transport.finishAuth(provider.code);  // the step-up authorization
    return await client.callTool({ name, arguments: {} });
  }
}

const [client, transport] = await connect();
const results = {};
for (const tool of tools) {
  const result = await call(client, transport, tool);
  results[tool] = result.structuredContent?.result ?? result.content?.[0]?.text;
}
await client.close();
console.log(JSON.stringify({ results, authorizations: provider.authorizations,
                             statuses: provider.statuses }));
