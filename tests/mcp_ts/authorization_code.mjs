// The MCP TypeScript SDK's client logs in with the authorization code grant (PKCE, dynamic
// registration unless a client is given) and calls tools; the process that runs it is the
// user agent. Talks JSON lines on stdio:
//   out {"authorize": <URL>}   the client sends the user to the authorization server;
//   in  <URL>                  the redirect URI with what the authorization server sent back;
//   out {"results", "statuses", "authorizations", "client", "tokens"}   at the end: results
//       has each tool's answer in order, {"error": ...} for a call that failed.
// Usage: node authorization_code.mjs <MCP endpoint URL> <issuer> [--client <id>:<secret>]
//        [--refresh-token] [--token <access token>] <tool>...
// --client: the client is registered ahead and no registration happens; --refresh-token: it
// registers for the refresh_token grant too; --token: it holds that Bearer token at first.
import { randomBytes } from "node:crypto";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";

import { MemoryProvider, call, connect, toolAnswer } from "./session.mjs";

const { values: options, positionals } = parseArgs({
  options: { client: { type: "string" }, "refresh-token": { type: "boolean", default: false },
             token: { type: "string" } },
  allowPositionals: true,
});
const [endpoint, issuer, ...tools] = positionals;
const registered = options.client?.split(":");
const userAgent = createInterface({ input: process.stdin });
const lines = userAgent[Symbol.asyncIterator]();

class Provider extends MemoryProvider {
  constructor() {
    super();
    if (options.token) this.savedTokens = { access_token: options.token, token_type: "Bearer" };
    if (registered) {
      const [client_id, client_secret] = registered;
      this.client = { client_id, client_secret, token_endpoint_auth_method: "client_secret_basic",
                      redirect_uris: [this.redirectUrl] };
    }
  }
  // A public client (PKCE only), as MCP clients on the user's machine are. By default no
  // refresh_token grant: on a 403 this SDK refreshes first, and a refresh can never widen the
  // scope (RFC 6749 §6), so the step-up would stop there instead of re-authorizing.
  get clientMetadata() {
    const grants = options["refresh-token"] ? ["authorization_code", "refresh_token"]
                                            : ["authorization_code"];
    return { client_name: "oauthguard ts test", redirect_uris: [this.redirectUrl],
             grant_types: grants, response_types: ["code"], token_endpoint_auth_method: "none" };
  }
  // What discovery found, kept until the code comes back (without it the SDK discovers again).
  discoveryState() { return this.discovered; }
  saveDiscoveryState(state) { this.discovered = state; }
  state() { this.sentState = randomBytes(16).toString("base64url"); return this.sentState; }

  // The user agent signs in and consents, then lands on the redirect URI.
  async redirectToAuthorization(authorizationUrl) {
    this.authorizations.push(Object.fromEntries(authorizationUrl.searchParams));
    console.log(JSON.stringify({ authorize: authorizationUrl.href }));
    const { value, done } = await lines.next();
    if (done) throw new Error("the user agent went away");
    this.code = this.authorizationCode(new URL(value).searchParams);
  }

  // RFC 6749 §4.1.2 and §10.12 (state), RFC 9207 §2.4 (iss): what the SDK leaves to us.
  authorizationCode(answer) {
    if (answer.get("state") !== this.sentState) throw new Error("state mismatch");
    if (answer.get("iss") !== issuer) throw new Error(`iss ${answer.get("iss")} is not ${issuer}`);
    if (answer.has("error")) {
      throw new Error(`authorization refused: ${answer.get("error")} ` +
                      `(${answer.get("error_description")})`);
    }
    return answer.get("code");
  }
}

const provider = new Provider();
const [client, transport] = await connect(endpoint, provider);
const results = [];
for (const tool of tools) {
  try {
    const result = await call(client, transport, provider, tool);
    results.push(toolAnswer(result));
  } catch (error) {
    results.push({ error: String(error) });
  }
}
await client.close();
console.log(JSON.stringify({ results, statuses: provider.statuses,
                             authorizations: provider.authorizations,
                             client: provider.client, tokens: provider.tokens() }));
userAgent.close();
