// The MCP TypeScript SDK's client logs in to an MCP server and calls tools; prints JSON.
// Usage: node client.mjs <mcp endpoint URL> <tool>...
// The authorization server approves at once, so "redirecting the user" is fetching the
// authorization URL and reading the code from the redirect, as a browser would.
import { MemoryProvider, call, connect, toolAnswer } from "./session.mjs";

const url = new URL(process.argv[2]);
const tools = process.argv.slice(3);

class Provider extends MemoryProvider {
  // No refresh_token grant: on a 403 this SDK refreshes first, and a refresh can never widen
  // the scope (RFC 6749 §6), so the step-up would stop there instead of re-authorizing.
  get clientMetadata() {
    return { client_name: "oauthguard ts test", redirect_uris: [this.redirectUrl],
             grant_types: ["authorization_code"], response_types: ["code"],
             token_endpoint_auth_method: "client_secret_post" };
  }
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
const [client, transport] = await connect(url, provider);
const results = {};
for (const tool of tools) {
  const result = await call(client, transport, provider, tool);
  results[tool] = toolAnswer(result);
}
await client.close();
console.log(JSON.stringify({ results, authorizations: provider.authorizations,
                             statuses: provider.statuses }));
