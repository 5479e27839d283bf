#!/usr/bin/env node
// An independent authorization server for oauthguard's interop tests: panva's oidc-provider,
// configured for the client credentials grant with RFC 8707 resource indicators, RFC 9068 JWT
// access tokens (RS256 or ES256 by client), opaque tokens for other resources, RFC 9449 DPoP
// RFC 7662 introspection (with RFC 9701 signed responses for one client) and RFC 7009
// revocation. For MCP clients also the authorization code grant (PKCE, RFC 9207 `iss`) with
// RFC 7591 dynamic registration, through its development login and consent pages.
//
//   node provider.mjs <port> [<MCP endpoint URL>...]     (or PORT=<port> node provider.mjs)
//
// Serves on http://127.0.0.1:<port> (the issuer). Each further argument is the URL of an MCP
// server's endpoint (on loopback its port is only known when the tests run); tokens for it
// are RFC 9068 JWTs with the MCP scopes. `POST /__rotate` replaces the signing keys
// by new ones (new kids); the old keys leave the JWKS at once. It answers with the new kids.
// Issued opaque tokens stay valid across a rotation.
//
// It also exchanges tokens (RFC 8693) for the client `exchanger`, with a grant handler that
// is test code (registerGrantType): the subject token must be one of its own JWT access
// tokens; the client's policy names the resources and scopes it may exchange for; the issued
// token is the provider's own JWT access token for that resource, keeping the subject's `sub`
// and naming the client as the actor (RFC 8693 §4.1 `act`).
import { generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';

import { createLocalJWKSet, jwtVerify } from 'jose';
import Provider, { errors } from 'oidc-provider';

const port = Number(process.argv[2] ?? process.env.PORT);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('usage: node provider.mjs <port>');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;
const mcpEndpoints = process.argv.slice(3);
for (const endpoint of mcpEndpoints) {
  if (!URL.canParse(endpoint)) {
    console.error(`not an MCP endpoint URL: ${endpoint}`);
    process.exit(2);
  }
}

// Resource indicators (RFC 8707) this server issues tokens for, and the format of each one's
// access tokens: RFC 9068 JWTs, or opaque strings the resource server introspects.
const RESOURCES = {
  'https://api.oauthguard.test/jwt': 'jwt',
  'https://other.oauthguard.test/jwt': 'jwt',
  'https://api.oauthguard.test/opaque': 'opaque',
  'https://other.oauthguard.test/opaque': 'opaque',
  ...Object.fromEntries(mcpEndpoints.map((endpoint) => [endpoint, 'jwt'])),
};
const SCOPE = 'read write';
const MCP_SCOPE = 'mcp:tools mcp:admin';

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
// RFC 8693: which resources and scopes each client may exchange tokens for.
const EXCHANGE_POLICY = {
  exchanger: { resources: ['https://other.oauthguard.test/jwt'], scopes: ['read'] },
  'exchanger-post': { resources: ['https://other.oauthguard.test/jwt'], scopes: ['read'] },
};

// The JWS algorithm of each client's JWT access tokens.
const SIGNING_ALG = { 'rs256-client': 'RS256', 'es256-client': 'ES256' };

const clients = [
  ...Object.keys(SIGNING_ALG).map((clientId) => ({
    client_id: clientId,
    client_secret: `${clientId}-secret`,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: SCOPE,
  })),
  // Clients that exchange tokens (RFC 8693), authenticating with Basic or in the body.
  ...Object.keys(EXCHANGE_POLICY).map((clientId) => ({
    client_id: clientId,
    client_secret: `${clientId}-secret`,
    grant_types: [TOKEN_EXCHANGE],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: clientId.endsWith('-post') ? 'client_secret_post' : 'client_secret_basic',
    scope: SCOPE,
  })),
  // A machine client of the MCP endpoints.
  {
    client_id: 'mcp-client',
    client_secret: 'mcp-client-secret',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: MCP_SCOPE,
  },
  // An MCP client registered ahead, with no scope restriction: it may step up to any scope
  // (a client registered through RFC 7591 is held to the scope it registered with).
  {
    client_id: 'mcp-app',
    client_secret: 'mcp-app-secret',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: ['http://127.0.0.1:9/callback'],
    application_type: 'native',
    token_endpoint_auth_method: 'client_secret_basic',
  },
  // The resource server itself: it only introspects, the second one asking for RFC 9701
  // signed introspection responses.
  ...['resource-server', 'resource-server-jwt'].map((clientId) => ({
    client_id: clientId,
    client_secret: `${clientId}-secret`,
    grant_types: [],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    ...(clientId.endsWith('-jwt') ? { introspection_signed_response_alg: 'ES256' } : {}),
  })),
];

// Issued opaque tokens live here, outside any one Provider instance, so that a key rotation
// (a new instance with new keys) does not revoke them.
const stored = new Map();

class SharedMemoryAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  // Without expiresIn (registered clients, grants) an entry does not expire.
  async upsert(id, payload, expiresIn) {
    const expiresAt = expiresIn ? Date.now() + expiresIn * 1000 : Infinity;
    stored.set(this.key(id), { payload, expiresAt });
  }

  async find(id) {
    const entry = stored.get(this.key(id));
    if (entry && entry.expiresAt > Date.now()) return entry.payload;
    stored.delete(this.key(id));
    return undefined;
  }

  async consume(id) {
    const entry = stored.get(this.key(id));
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    stored.delete(this.key(id));
  }

  // Sessions are found by the uid their interactions carry.
  async findByUid(uid) {
    for (const [key, { payload, expiresAt }] of stored) {
      if (key.startsWith(`${this.model}:`) && payload.uid === uid && expiresAt > Date.now()) {
        return payload;
      }
    }
    return undefined;
  }

  async findByUserCode() { return undefined; }

  async revokeByGrantId() {}
}

let generation = 0;

function signingKeys() {
  generation += 1;
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  return {
    keys: [
      { ...rsa.export({ format: 'jwk' }), kid: `rsa-${generation}`, use: 'sig', alg: 'RS256' },
      { ...ec.export({ format: 'jwk' }), kid: `ec-${generation}`, use: 'sig', alg: 'ES256' },
    ],
  };
}

function resourceServer(resource, client) {
  const scope = mcpEndpoints.includes(resource) ? MCP_SCOPE : SCOPE;
  if (RESOURCES[resource] === 'opaque') {
    return { scope, audience: resource, accessTokenFormat: 'opaque' };
  }
  // RFC 9068 JWT access tokens (typ at+jwt), signed with the client's algorithm.
  const alg = SIGNING_ALG[client.clientId] ?? 'RS256';
  return { scope, audience: resource, accessTokenFormat: 'jwt', jwt: { sign: { alg } } };
}

// Whoever signs in on the development login page is an end user of that name.
function findAccount(ctx, accountId) {
  return { accountId, claims: () => ({ sub: accountId }) };
}

function configuration() {
  return {
    adapter: SharedMemoryAdapter,
    clients,
    jwks: signingKeys(),
    // offline_access: refresh tokens (and the refresh_token grant) for end users' clients.
    scopes: [...SCOPE.split(' '), ...MCP_SCOPE.split(' '), 'offline_access'],
    clientBasedCORS: () => false,
    // The actor of an exchanged token (RFC 8693 §4.1), set by the grant handler below.
    extraTokenClaims: (ctx, token) => (
      token.gty === 'token-exchange' && ctx?.state?.act ? { act: ctx.state.act } : undefined),
    conformIdTokenClaims: true,
    findAccount,
    features: {
      // Login and consent pages a test drives like a browser (any login and password).
      devInteractions: { enabled: true },
      registration: { enabled: true }, // RFC 7591, open to anyone
      clientCredentials: { enabled: true },
      dPoP: { enabled: true },
      introspection: {
        enabled: true,
        // Only the resource server may introspect (and a client its own tokens).
        allowedPolicy: (ctx, client, token) => (
          client.clientId.startsWith('resource-server') || client.clientId === token.clientId),
      },
      jwtIntrospection: { enabled: true },
      revocation: { enabled: true }, // RFC 7009: a client revokes its own tokens
      resourceIndicators: {
        enabled: true,
        defaultResource: (ctx, client, oneOf) => oneOf,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resource, client) => {
          if (!Object.hasOwn(RESOURCES, resource)) throw new errors.InvalidTarget();
          return resourceServer(resource, client);
        },
      },
    },
    ttl: { ClientCredentials: 600 },
  };
}

function one(value) {
  return Array.isArray(value) ? value : [value].filter(Boolean);
}

// RFC 8693 §2.1-2.2: the token-exchange grant, as test code.
function registerTokenExchange(provider, jwks) {
  const ownKeys = createLocalJWKSet({
    keys: jwks.keys.map(({ kty, crv, x, y, n, e, kid, alg }) => ({ kty, crv, x, y, n, e, kid, alg })),
  });
  const handler = async (ctx) => {
    const { client, params } = ctx.oidc;
    const policy = EXCHANGE_POLICY[client.clientId];
    if (!policy) throw new errors.UnauthorizedClient('this client may not exchange tokens');
    if (!params.subject_token || params.subject_token_type !== ACCESS_TOKEN_TYPE) {
      throw new errors.InvalidRequest('subject_token of type access_token is required');
    }
    let subject;
    try {
      ({ payload: subject } = await jwtVerify(params.subject_token, ownKeys, { issuer, typ: 'at+jwt' }));
    } catch {
      throw new errors.InvalidGrant('the subject_token is invalid or expired');
    }
    const targets = [...one(params.resource), ...one(params.audience)];
    if (targets.length !== 1 || !policy.resources.includes(targets[0])) {
      throw new errors.InvalidTarget('this client may not exchange for that target');
    }
    const scopes = params.scope ? params.scope.split(' ') : policy.scopes;
    if (!scopes.every((scope) => policy.scopes.includes(scope))) {
      throw new errors.InvalidScope('this client may not exchange for that scope', params.scope);
    }
    const token = new provider.AccessToken({
      accountId: subject.sub, client, gty: 'token-exchange', grantId: `exchange-${subject.jti}`,
      scope: scopes.join(' '),
    });
    token.resourceServer = {
      audience: targets[0],
      scope: SCOPE,
      accessTokenFormat: 'jwt',
      jwt: { sign: { alg: 'ES256' } },
      identifier: () => targets[0],
    };
    ctx.state.act = { sub: client.clientId, ...(subject.act ? { act: subject.act } : {}) };
    const value = await token.save();
    ctx.body = {
      access_token: value,
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: 'Bearer',
      expires_in: token.expiration,
      scope: token.scope,
    };
  };
  provider.registerGrantType(TOKEN_EXCHANGE, handler, [
    'subject_token', 'subject_token_type', 'requested_token_type', 'resource', 'audience', 'scope',
    'actor_token', 'actor_token_type',
  ], ['resource', 'audience']);
}

function newProvider() {
  const config = configuration();
  const kids = config.jwks.keys.map((key) => key.kid);
  const provider = new Provider(issuer, config);
  registerTokenExchange(provider, config.jwks);
  provider.on('server_error', (ctx, error) => console.error('server_error', error));
  return { kids, handle: provider.callback() };
}

let current = newProvider();

const server = createServer((req, res) => {
  if (req.url === '/__rotate' && req.method === 'POST') {
    current = newProvider();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ kids: current.kids }));
    return;
  }
  current.handle(req, res);
});

server.listen(port, '127.0.0.1', () => {
  console.log(JSON.stringify({ issuer }));
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
