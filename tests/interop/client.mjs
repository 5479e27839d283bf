#!/usr/bin/env node
// A DPoP client built on panva's oauth4webapi (not on oauthguard): it discovers the
// authorization server, gets a DPoP-bound access token by the client credentials grant for a
// resource (RFC 8707), then calls a protected URL with it and a fresh DPoP proof, retrying
// once when the server asks for a nonce (RFC 9449 §8 and §9). Prints one JSON object:
//
//   { token_type, access_token, jkt, attempts: [{ status, proof, www_authenticate,
//     dpop_nonce, body }] }
//
//   node client.mjs --issuer URL --client-id ID --client-secret SECRET --resource URI
//                   --url URL [--method GET] [--scope "read write"] [--alg ES256]
import { parseArgs } from 'node:util';

import * as oauth from 'oauth4webapi';

const { values: args } = parseArgs({
  options: {
    issuer: { type: 'string' },
    'client-id': { type: 'string' },
    'client-secret': { type: 'string' },
    resource: { type: 'string' },
    url: { type: 'string' },
    method: { type: 'string', default: 'GET' },
    scope: { type: 'string', default: 'read' },
    alg: { type: 'string', default: 'ES256' },
  },
});
for (const name of ['issuer', 'client-id', 'client-secret', 'resource', 'url']) {
  if (!args[name]) {
    console.error(`client.mjs: --${name} is required`);
    process.exit(2);
  }
}

// Loopback http is fine for the tests; oauth4webapi insists on https otherwise.
const insecure = { [oauth.allowInsecureRequests]: true };
const issuer = new URL(args.issuer);
const as = await oauth.processDiscoveryResponse(
  issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oidc', ...insecure }));
const client = { client_id: args['client-id'] };
const keyPair = await oauth.generateKeyPair(args.alg);
const DPoP = oauth.DPoP(client, keyPair);

// One retry when the server answers use_dpop_nonce: the handle has kept the nonce it sent.
async function withNonceRetry(request) {
  try {
    return await request();
  } catch (error) {
    if (!oauth.isDPoPNonceError(error)) throw error;
    return request();
  }
}

const token = await withNonceRetry(async () => {
  const response = await oauth.clientCredentialsGrantRequest(
    as, client, oauth.ClientSecretBasic(args['client-secret']),
    new URLSearchParams({ resource: args.resource, scope: args.scope }), { DPoP, ...insecure });
  return oauth.processClientCredentialsResponse(as, client, response);
});

// Every request to the protected URL, as the resource server saw and answered it.
const attempts = [];
async function recordingFetch(url, options) {
  const response = await fetch(url, options);
  const headers = new Headers(options.headers);
  attempts.push({
    status: response.status,
    proof: headers.get('dpop'),
    authorization: headers.get('authorization'),
    www_authenticate: response.headers.get('www-authenticate'),
    dpop_nonce: response.headers.get('dpop-nonce'),
    body: await response.clone().text(),
  });
  return response;
}

try {
  await withNonceRetry(() => oauth.protectedResourceRequest(
    token.access_token, args.method, new URL(args.url), new Headers(), null,
    { DPoP, [oauth.customFetch]: recordingFetch, ...insecure }));
} catch (error) {
  // A refusal is an answer too: the caller asserts on the recorded attempts.
  if (!(error instanceof oauth.WWWAuthenticateChallengeError)) throw error;
}

console.log(JSON.stringify({
  token_type: token.token_type,
  access_token: token.access_token,
  jkt: await DPoP.calculateThumbprint(),
  attempts,
}));
