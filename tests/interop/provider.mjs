#!/usr/bin/env node
// An independent authorization server for oauthguard's interop tests: panva's oidc-provider,
// configured for the client credentials grant with RFC 8707 resource indicators, RFC 9068 JWT
// access tokens (RS256 or ES256 by client), opaque tokens for other resources, RFC 9449 DPoP
// RFC 7662 introspection (with RFC 9701 signed responses for one client) and RFC 7009
// revocation.
//
//   node provider.mjs <port>          (or PORT=<port> node provider.mjs)
//
// Serves on http://127.0.0.1:<port> (the issuer). `POST /__rotate` replaces the signing keys
// by new ones (new kids); the old keys leave the JWKS at once. It answers with the new kids.
// Issued opaque tokens stay valid across a rotation.
import { generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';

import Provider, { errors } from 'oidc-provider';

const port = Number(process.argv[2] ?? process.env.PORT);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('usage: node provider.mjs <port>');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;

// Resource indicators (RFC 8707) this server issues tokens for, and the format of each one's
// access tokens: RFC 9068 JWTs, or opaque strings the resource server introspects.
const RESOURCES = {
  'https://api.oauthguard.test/jwt': 'jwt',
  'https://other.oauthguard.test/jwt': 'jwt',
  'https://api.oauthguard.test/opaque': 'opaque',
  'https://other.oauthguard.test/opaque': 'opaque',
};
const SCOPE = 'read write';

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

  async upsert(id, payload, expiresIn) {
    stored.set(this.key(id), { payload, expiresAt: Date.now() + expiresIn * 1000 });
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

  async findByUid() { return undefined; }

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
  if (RESOURCES[resource] === 'opaque') {
    return { scope: SCOPE, audience: resource, accessTokenFormat: 'opaque' };
  }
  // RFC 9068 JWT access tokens (typ at+jwt), signed with the client's algorithm.
  const alg = SIGNING_ALG[client.clientId] ?? 'RS256';
  return { scope: SCOPE, audience: resource, accessTokenFormat: 'jwt', jwt: { sign: { alg } } };
}

function configuration() {
  return {
    adapter: SharedMemoryAdapter,
    clients,
    jwks: signingKeys(),
    scopes: ['read', 'write'],
    clientBasedCORS: () => false,
    conformIdTokenClaims: true,
    findAccount: () => undefined, // no end users: machine clients only
    features: {
      devInteractions: { enabled: false },
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

function newProvider() {
  const config = configuration();
  const kids = config.jwks.keys.map((key) => key.kid);
  const provider = new Provider(issuer, config);
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
