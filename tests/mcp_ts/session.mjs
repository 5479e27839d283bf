// What both authorization-code test clients share: the provider's storage, the MCP session,
// logging in when the server answers 401, stepping up when a tool call is refused, and a
// record of every HTTP exchange. A provider sets `code` on each redirect.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";

// What an OAuth client provider stores, kept in memory; subclasses say how to log in.
export class MemoryProvider {
  constructor() { this.authorizations = []; this.statuses = []; }
  get redirectUrl() { return "http://127.0.0.1:9/callback"; }
  clientInformation() { return this.client; }
  saveClientInformation(client) { this.client = client; }
  tokens() { return this.savedTokens; }
  saveTokens(tokens) { this.savedTokens = tokens; }
  saveCodeVerifier(verifier) { this.verifier = verifier; }
  codeVerifier() { return this.verifier; }
}

// fetch for the SDK that records "METHOD /path status" of each exchange in provider.statuses.
function recording(provider) {
  return async (input, init) => {
    const response = await fetch(input, init);
    provider.statuses.push(`${init?.method ?? "GET"} ${new URL(input).pathname} ${response.status}`);
    return response;
  };
}

// A connected client and its transport; a 401 runs the login once.
export async function connect(url, provider) {
  for (let attempt = 0; attempt < 2; attempt++) {
    const transport = new StreamableHTTPClientTransport(new URL(url), {
      authProvider: provider, fetch: recording(provider) });
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

// A tool's answer; a refusal the SDK turns into an authorization is followed by one retry.
export async function call(client, transport, provider, name) {
  try {
    return await client.callTool({ name, arguments: {} });
  } catch (error) {
    if (!(error instanceof UnauthorizedError)) throw error;
    await transport.finishAuth(provider.code); // the step-up authorization
    return await client.callTool({ name, arguments: {} });
  }
}

// The text a tool answered with.
export function toolAnswer(result) {
  return result.structuredContent?.result ?? result.content?.[0]?.text;
}
