// Interop authorization server for the oauthkit test suite.
//
// Runs the certified OpenID provider `oidc-provider` together with a small
// FHIR-like protected resource and a few test-control endpoints, all on one
// loopback port. Started by the Go tests as:
//
//   node interop/provider/server.mjs <config.json>
//
// It listens on 127.0.0.1 on a free port and prints exactly one line
//
//   READY {"issuer":"http://127.0.0.1:PORT", ...}
//
// on stdout once it can serve. Everything else (oidc-provider notices and
// warnings, diagnostics) goes to stderr. It exits when stdin closes, so a test
// process that dies never leaves it running, and on SIGTERM/SIGINT.
//
// Config file (written by the Go harness):
//
//   {
//     "access_token_ttl": 4,          // seconds, AccessToken (auth code, refresh, custom grants)
//     "client_credentials_ttl": 4,    // seconds, client_credentials tokens; default access_token_ttl
//     "refresh_token_ttl": 3600,      // seconds
//     "clients": [ { RFC 7591 client metadata, incl. client_id, client_secret, jwks } ]
//   }
//
// Endpoints besides oidc-provider's own:
//
//   GET  /fhir/Patient[...]                 protected resource (opaque token lookup)
//   GET  /fhir/.well-known/smart-configuration
//   GET  /test/stats                        counters as JSON
//   POST /test/fail    {"count","status","retry_after","error"}  next N token requests fail
//   POST /test/revoke  {"token"}            revoke an access token at once
//   POST /test/reset                        zero the counters
//
// Custom grants registered with provider.registerGrantType:
//   urn:ietf:params:oauth:grant-type:jwt-bearer      (RFC 7523 section 2.1)
//   urn:ietf:params:oauth:grant-type:token-exchange  (RFC 8693)

// oidc-provider prints notices with console.info (stdout). stdout carries only
// the READY line, so every console method is routed to stderr before the
// provider module is loaded.
for (const m of ['log', 'info', 'warn', 'debug', 'trace']) {
  console[m] = console.error.bind(console);
}

import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as crypto from 'node:crypto';

const { default: Provider, errors } = await import('oidc-provider');
const jose = await import('jose');

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const ASYMMETRIC_ALGS = [
  'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512',
  'ES256', 'ES384', 'ES512', 'Ed25519', 'EdDSA',
];
const RESOURCE_SCOPES = [
  'system/Patient.rs', 'system/Patient.read', 'system/Observation.rs',
  'patient/Patient.rs', 'patient/Patient.read', 'user/Patient.rs', 'user/Patient.read',
];
const MAX_BODY = 64 * 1024;

function fatal(msg) {
  process.stderr.write(`interop provider: ${msg}\n`);
  process.exit(1);
}

if (process.argv.length < 3) {
  fatal('usage: node server.mjs <config.json>');
}

let cfg;
try {
  cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));
} catch (err) {
  fatal(`read config: ${err.message}`);
}

const positive = (v, dflt) => (Number.isInteger(v) && v > 0 ? v : dflt);
const accessTokenTTL = positive(cfg.access_token_ttl, 300);
const clientCredentialsTTL = positive(cfg.client_credentials_ttl, accessTokenTTL);
const refreshTokenTTL = positive(cfg.refresh_token_ttl, 3600);
const clients = Array.isArray(cfg.clients) ? cfg.clients : [];

// Exit with the parent: stdin is a pipe held by the test process.
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));

const server = http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(0, '127.0.0.1', resolve);
});
const { port } = server.address();
const issuer = `http://127.0.0.1:${port}`;
const fhirBase = `${issuer}/fhir`;

// ---------------------------------------------------------------- counters

function newStats() {
  return {
    token_requests: 0,
    token_requests_by_grant: {},
    token_requests_by_client: {},
    token_responses_by_status: {},
    token_errors: 0,
    token_errors_by_code: {},
    injected_failures: 0,
    grant_successes: 0,
    refresh_token_reuse: 0,
    refresh_tokens_consumed: 0,
    grants_revoked: 0,
    server_errors: 0,
    resource_requests: 0,
    resource_unauthorized: 0,
    revocation_requests: 0,
  };
}
let stats = newStats();
const bump = (obj, key) => { obj[key] = (obj[key] || 0) + 1; };

let failPlan = { count: 0, status: 503, retryAfter: 0, error: 'temporarily_unavailable' };

// ---------------------------------------------------------------- provider

const resourceServerInfo = {
  scope: RESOURCE_SCOPES.join(' '),
  audience: fhirBase,
  accessTokenFormat: 'opaque',
  accessTokenTTL,
};

const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
const signingJWK = {
  ...(await jose.exportJWK(privateKey)), kid: 'interop-rs256', alg: 'RS256', use: 'sig',
};

const clientJWKS = new Map();
for (const c of clients) {
  if (c && c.client_id && c.jwks) clientJWKS.set(c.client_id, c.jwks);
}

const configuration = {
  clients,
  jwks: { keys: [signingJWK] },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  findAccount: async (_ctx, sub) => ({
    accountId: sub,
    claims: async () => ({ sub }),
  }),
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    dPoP: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // Requests that name no resource get the FHIR server: client_credentials
      // scopes are resource-server scopes, so this is what lets a plain
      // `scope=system/Patient.rs` request succeed.
      defaultResource: async (_ctx, _client, oneOf) => {
        if (oneOf) return oneOf.includes(fhirBase) ? fhirBase : oneOf[0];
        return fhirBase;
      },
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, indicator) => {
        if (indicator === fhirBase) return resourceServerInfo;
        throw new errors.InvalidTarget();
      },
    },
  },
  rotateRefreshToken: true,
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  expiresWithSession: async () => false,
  ttl: {
    AccessToken: accessTokenTTL,
    ClientCredentials: clientCredentialsTTL,
    RefreshToken: refreshTokenTTL,
    AuthorizationCode: 60,
    IdToken: 3600,
    Interaction: 600,
    Session: 3600,
    Grant: Math.max(refreshTokenTTL, 3600),
  },
  enabledJWA: {
    clientAuthSigningAlgValues: ['HS256', 'HS384', 'HS512', ...ASYMMETRIC_ALGS],
  },
  renderError: async (ctx, out) => {
    ctx.type = 'json';
    ctx.body = out;
  },
};

const provider = new Provider(issuer, configuration);

provider.on('grant.success', () => { stats.grant_successes += 1; });
provider.on('grant.error', (_ctx, err) => {
  bump(stats.token_errors_by_code, err.error || 'unknown');
  // InvalidGrant carries the reason in error_detail; error_description is generic.
  if (err.error === 'invalid_grant' && err.error_detail === 'refresh token already used') {
    stats.refresh_token_reuse += 1;
  }
});
provider.on('grant.revoked', () => { stats.grants_revoked += 1; });
provider.on('refresh_token.consumed', () => { stats.refresh_tokens_consumed += 1; });
provider.on('server_error', (_ctx, err) => {
  stats.server_errors += 1;
  process.stderr.write(`interop provider: server_error: ${err && err.message}\n`);
});

// ---------------------------------------------------------------- helpers

function requestedScopes(params) {
  return new Set(String(params.scope || '').split(' ').filter(Boolean));
}

function single(value, name) {
  if (value === undefined) return undefined;
  if (Array.isArray(value)) {
    if (value.length > 1) throw new errors.InvalidTarget(`only a single ${name} value is supported`);
    return value[0];
  }
  return value;
}

async function findAccessToken(value) {
  if (typeof value !== 'string' || value === '') return undefined;
  return (await provider.AccessToken.find(value)) || (await provider.ClientCredentials.find(value));
}

// ---------------------------------------------------------------- RFC 7523 jwt-bearer

provider.registerGrantType(JWT_BEARER, async (ctx) => {
  const { client, params } = ctx.oidc;
  if (!params.assertion) {
    throw new errors.InvalidRequest("missing required parameter 'assertion'");
  }
  const jwks = clientJWKS.get(client.clientId);
  if (!jwks) {
    throw new errors.InvalidGrant('client has no registered keys for assertions');
  }

  let payload;
  try {
    ({ payload } = await jose.jwtVerify(params.assertion, jose.createLocalJWKSet(jwks), {
      algorithms: ASYMMETRIC_ALGS,
      issuer: client.clientId,
      audience: [`${issuer}/token`, issuer],
      requiredClaims: ['exp', 'jti', 'sub'],
      clockTolerance: 5,
    }));
  } catch (err) {
    throw new errors.InvalidGrant(`assertion rejected (${err.code || 'invalid'})`);
  }
  const now = Math.floor(Date.now() / 1000);
  if (payload.exp - now > 3600) {
    throw new errors.InvalidGrant('assertion exp is too far in the future');
  }
  const unique = await provider.ReplayDetection.unique(
    `jwt-bearer:${client.clientId}`,
    payload.jti,
    payload.exp + 5,
  );
  if (!unique) {
    throw new errors.InvalidGrant('assertion jti already used');
  }

  const resourceServer = new provider.ResourceServer(fhirBase, resourceServerInfo);
  const scope = [...requestedScopes(params)].filter((s) => resourceServer.scopes.has(s)).join(' ') || undefined;
  const at = new provider.AccessToken({
    accountId: payload.sub,
    client,
    gty: 'jwt-bearer',
    scope,
    resourceServer,
  });
  ctx.oidc.entity('AccessToken', at);
  const value = await at.save();
  ctx.body = {
    access_token: value,
    token_type: at.tokenType,
    expires_in: at.expiration,
    ...(scope ? { scope } : {}),
  };
}, ['assertion', 'scope', 'resource']);

// ---------------------------------------------------------------- RFC 8693 token exchange

provider.registerGrantType(TOKEN_EXCHANGE, async (ctx) => {
  const { client, params } = ctx.oidc;
  for (const name of ['subject_token', 'subject_token_type']) {
    if (!params[name]) throw new errors.InvalidRequest(`missing required parameter '${name}'`);
  }
  if (params.subject_token_type !== ACCESS_TOKEN_TYPE) {
    throw new errors.InvalidRequest('unsupported subject_token_type');
  }
  if (params.requested_token_type && params.requested_token_type !== ACCESS_TOKEN_TYPE) {
    throw new errors.InvalidRequest('unsupported requested_token_type');
  }
  const subject = await findAccessToken(params.subject_token);
  if (!subject || subject.isExpired) {
    throw new errors.InvalidGrant('subject_token is invalid or expired');
  }
  if (params.actor_token) {
    if (params.actor_token_type !== ACCESS_TOKEN_TYPE) {
      throw new errors.InvalidRequest('unsupported actor_token_type');
    }
    if (!(await findAccessToken(params.actor_token))) {
      throw new errors.InvalidGrant('actor_token is invalid or expired');
    }
  }

  const audience = single(params.audience, 'audience') || single(params.resource, 'resource') || fhirBase;
  const subjectScopes = subject.scopes;
  const requested = requestedScopes(params);
  for (const s of requested) {
    if (!subjectScopes.has(s)) throw new errors.InvalidScope('requested scope exceeds the subject token', s);
  }
  const scope = [...(requested.size ? requested : subjectScopes)].join(' ') || undefined;

  const at = new provider.AccessToken({
    accountId: subject.accountId || subject.clientId,
    client,
    gty: 'token-exchange',
    scope,
  });
  at.setAudience(audience);
  ctx.oidc.entity('AccessToken', at);
  const value = await at.save();
  ctx.body = {
    access_token: value,
    issued_token_type: ACCESS_TOKEN_TYPE,
    token_type: at.tokenType,
    expires_in: at.expiration,
    ...(scope ? { scope } : {}),
  };
}, [
  'subject_token', 'subject_token_type', 'actor_token', 'actor_token_type',
  'requested_token_type', 'audience', 'resource', 'scope',
], ['audience', 'resource']);

const oidcCallback = provider.callback();

// ---------------------------------------------------------------- plain HTTP helpers

function sendJSON(res, status, body, headers = {}) {
  const data = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(data);
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY) throw new Error('request body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parseJSON(text) {
  if (!text) return {};
  return JSON.parse(text);
}

// Best-effort client identification for the counters. Never logged.
function clientOf(req, form) {
  const auth = req.headers.authorization || '';
  const m = /^Basic\s+(.+)$/i.exec(auth);
  if (m) {
    const decoded = Buffer.from(m[1], 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i > 0) {
      try { return decodeURIComponent(decoded.slice(0, i).replace(/\+/g, ' ')); } catch { return decoded.slice(0, i); }
    }
  }
  if (form.get('client_id')) return form.get('client_id');
  const assertion = form.get('client_assertion');
  if (assertion) {
    try { return String(jose.decodeJwt(assertion).iss || 'unknown'); } catch { return 'unknown'; }
  }
  return 'unknown';
}

// ---------------------------------------------------------------- routes

let discovery;

async function handleToken(req, res) {
  const body = await readBody(req);
  const form = new URLSearchParams(body);
  stats.token_requests += 1;
  bump(stats.token_requests_by_grant, form.get('grant_type') || 'none');
  bump(stats.token_requests_by_client, clientOf(req, form));
  res.on('finish', () => {
    bump(stats.token_responses_by_status, String(res.statusCode));
    if (res.statusCode >= 400) stats.token_errors += 1;
  });

  if (failPlan.count > 0) {
    failPlan.count -= 1;
    stats.injected_failures += 1;
    const headers = failPlan.retryAfter > 0 ? { 'retry-after': String(failPlan.retryAfter) } : {};
    sendJSON(res, failPlan.status, { error: failPlan.error, error_description: 'injected failure' }, headers);
    return;
  }

  // The stream is consumed; oidc-provider reads an already-read body from req.body.
  req.body = body;
  oidcCallback(req, res);
}

async function handleResource(req, res, url) {
  stats.resource_requests += 1;
  const unauthorized = (desc) => {
    stats.resource_unauthorized += 1;
    sendJSON(res, 401, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'login', diagnostics: desc }] }, {
      'www-authenticate': `Bearer realm="fhir", error="invalid_token", error_description="${desc}"`,
    });
  };
  if (req.method !== 'GET') {
    sendJSON(res, 405, { resourceType: 'OperationOutcome' }, { allow: 'GET' });
    return;
  }
  const m = /^(Bearer|DPoP)\s+(\S+)$/i.exec(req.headers.authorization || '');
  if (!m) {
    stats.resource_unauthorized += 1;
    sendJSON(res, 401, { resourceType: 'OperationOutcome' }, { 'www-authenticate': 'Bearer realm="fhir"' });
    return;
  }
  const token = await findAccessToken(m[2]);
  if (!token || token.isExpired) {
    unauthorized('token is invalid or expired');
    return;
  }
  if (token.jkt && m[1].toLowerCase() !== 'dpop') {
    unauthorized('token is DPoP-bound');
    return;
  }
  if (token.aud && token.aud !== fhirBase) {
    unauthorized('token audience is not this server');
    return;
  }
  const id = url.pathname.replace(/^\/fhir\/Patient\/?/, '') || 'example';
  sendJSON(res, 200, {
    resourceType: 'Bundle',
    type: 'searchset',
    total: 1,
    entry: [{ fullUrl: `${fhirBase}/Patient/${id}`, resource: { resourceType: 'Patient', id } }],
  }, {
    'x-token-client': token.clientId || '',
    'x-token-subject': token.accountId || '',
    'x-token-scope': token.scope || '',
    'x-token-kind': token.kind,
  });
}

function smartConfiguration() {
  return {
    issuer,
    jwks_uri: discovery.jwks_uri,
    authorization_endpoint: discovery.authorization_endpoint,
    token_endpoint: discovery.token_endpoint,
    revocation_endpoint: discovery.revocation_endpoint,
    introspection_endpoint: discovery.introspection_endpoint,
    grant_types_supported: discovery.grant_types_supported.filter((g) => g !== 'implicit'),
    token_endpoint_auth_methods_supported: discovery.token_endpoint_auth_methods_supported,
    token_endpoint_auth_signing_alg_values_supported: discovery.token_endpoint_auth_signing_alg_values_supported,
    scopes_supported: ['openid', 'offline_access', ...RESOURCE_SCOPES],
    response_types_supported: ['code'],
    code_challenge_methods_supported: ['S256'],
    capabilities: [
      'client-confidential-symmetric', 'client-confidential-asymmetric', 'client-public',
      'permission-offline', 'permission-patient', 'permission-user', 'launch-standalone',
    ],
  };
}

async function handleTest(req, res, url) {
  switch (`${req.method} ${url.pathname}`) {
    case 'GET /test/stats':
      sendJSON(res, 200, stats);
      return;
    case 'POST /test/reset':
      await readBody(req);
      stats = newStats();
      failPlan.count = 0;
      sendJSON(res, 200, {});
      return;
    case 'POST /test/fail': {
      const b = parseJSON(await readBody(req));
      failPlan = {
        count: positive(b.count, 1),
        status: positive(b.status, 503),
        retryAfter: Number.isInteger(b.retry_after) && b.retry_after > 0 ? b.retry_after : 0,
        error: typeof b.error === 'string' && b.error ? b.error : 'temporarily_unavailable',
      };
      sendJSON(res, 200, { count: failPlan.count });
      return;
    }
    case 'POST /test/revoke': {
      const b = parseJSON(await readBody(req));
      const token = await findAccessToken(b.token);
      if (token) await token.destroy();
      sendJSON(res, 200, { revoked: !!token });
      return;
    }
    default:
      sendJSON(res, 404, { error: 'not_found' });
  }
}

server.on('request', async (req, res) => {
  try {
    const url = new URL(req.url, issuer);
    const { pathname } = url;
    if (pathname.startsWith('/test/')) {
      await handleTest(req, res, url);
    } else if (pathname === '/fhir/.well-known/smart-configuration') {
      sendJSON(res, 200, smartConfiguration());
    } else if (pathname === '/fhir/Patient' || pathname.startsWith('/fhir/Patient/')) {
      await handleResource(req, res, url);
    } else if (req.method === 'POST' && pathname === '/token') {
      await handleToken(req, res);
    } else {
      if (req.method === 'POST' && pathname === '/token/revocation') stats.revocation_requests += 1;
      oidcCallback(req, res);
    }
  } catch (err) {
    process.stderr.write(`interop provider: request failed: ${err.message}\n`);
    if (!res.headersSent) sendJSON(res, 500, { error: 'server_error' });
    else res.destroy();
  }
});

// Read our own discovery document so the SMART configuration points at the
// provider's real endpoints.
try {
  const r = await fetch(`${issuer}/.well-known/openid-configuration`);
  if (!r.ok) throw new Error(`status ${r.status}`);
  discovery = await r.json();
} catch (err) {
  fatal(`discovery self-check failed: ${err.message}`);
}
if (discovery.token_endpoint !== `${issuer}/token`) {
  fatal(`unexpected token endpoint ${discovery.token_endpoint}`);
}

process.stdout.write(`READY ${JSON.stringify({
  issuer,
  token_endpoint: discovery.token_endpoint,
  authorization_endpoint: discovery.authorization_endpoint,
  revocation_endpoint: discovery.revocation_endpoint,
  introspection_endpoint: discovery.introspection_endpoint,
  jwks_uri: discovery.jwks_uri,
  fhir_base: fhirBase,
})}\n`);
