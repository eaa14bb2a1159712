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
//     "clients": [ { RFC 7591 client metadata, incl. client_id, client_secret, jwks } ],
//     "dpop_nonce": false,            // the token endpoint requires DPoP nonces (RFC 9449 section 8)
//     "resource_dpop_nonce": false,   // the resource requires DPoP nonces (RFC 9449 section 9)
//     "tls": { "cert": PEM, "key": PEM, "ca": PEM }  // optional: also serve HTTPS (see below)
//   }
//
// With "tls", a second listener serves the same routes over HTTPS on another
// loopback port. It requests a client certificate (without requiring one);
// certificates issued by "ca" count as verified for tls_client_auth, and
// self-signed ones are matched against the client's JWKS for
// self_signed_tls_client_auth (RFC 8705). Its base URL is "mtls_base" in the
// READY line, and the discovery document names its token endpoint in
// mtls_endpoint_aliases. Access tokens of clients registered with
// tls_client_certificate_bound_access_tokens are bound to the certificate,
// and the resource then checks it (x5t#S256).
//
// DPoP: the provider issues DPoP-bound tokens to requests with a proof; the
// resource checks the proof (signature, typ, htm, htu, iat, jti replay, ath,
// jkt) and, with "resource_dpop_nonce", a nonce of its own.
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
//
// Device authorization grant (RFC 8628): oidc-provider's deviceFlow feature,
// with two public clients registered here besides the config's: DEVICE_CLIENT
// (device codes valid 10 minutes) and DEVICE_SHORT_CLIENT (valid 1 second,
// to test expiry). oidc-provider itself never answers slow_down, so this
// server does (RFC 8628 section 3.5) when a device code is polled again less
// than DEVICE_MIN_POLL_MS after its previous poll: 1 second, shorter than
// the 5 s default interval so that tests run fast.

// oidc-provider prints notices with console.info (stdout). stdout carries only
// the READY line, so every console method is routed to stderr before the
// provider module is loaded.
for (const m of ['log', 'info', 'warn', 'debug', 'trace']) {
  console[m] = console.error.bind(console);
}

import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as crypto from 'node:crypto';

const { default: Provider, errors } = await import('oidc-provider');
const jose = await import('jose');

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const DEVICE_CODE = 'urn:ietf:params:oauth:grant-type:device_code';
const DEVICE_CLIENT = 'device-public';
const DEVICE_SHORT_CLIENT = 'device-short';
const DEVICE_MIN_POLL_MS = 1000;
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
const DPOP_ALGS = ['ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512', 'RS256', 'Ed25519', 'EdDSA'];

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
for (const id of [DEVICE_CLIENT, DEVICE_SHORT_CLIENT]) {
  clients.push({
    client_id: id,
    application_type: 'native',
    token_endpoint_auth_method: 'none',
    grant_types: [DEVICE_CODE, 'refresh_token'],
    response_types: [],
    redirect_uris: [],
  });
}
const dpopNonce = cfg.dpop_nonce === true;
const resourceDpopNonce = cfg.resource_dpop_nonce === true;
const tlsConfig = cfg.tls && cfg.tls.cert && cfg.tls.key ? cfg.tls : undefined;

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

// The HTTPS listener (mutual TLS), when configured.
let tlsServer;
let mtlsBase;
if (tlsConfig) {
  tlsServer = https.createServer({
    cert: tlsConfig.cert,
    key: tlsConfig.key,
    ca: tlsConfig.ca ? [tlsConfig.ca] : undefined,
    requestCert: true,
    rejectUnauthorized: false,
  });
  await new Promise((resolve, reject) => {
    tlsServer.once('error', reject);
    tlsServer.listen(0, '127.0.0.1', resolve);
  });
  mtlsBase = `https://127.0.0.1:${tlsServer.address().port}`;
}

// peerCertificate returns the client certificate of a request's TLS
// connection (an X509Certificate), or undefined.
function peerCertificate(req) {
  const sock = req.socket;
  if (!sock || typeof sock.getPeerX509Certificate !== 'function') return undefined;
  try {
    return sock.getPeerX509Certificate() || undefined;
  } catch {
    return undefined;
  }
}
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
    resource_dpop_nonce_challenges: 0,
    resource_dpop_accepted: 0,
    resource_mtls_accepted: 0,
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
    deviceFlow: { enabled: true },
    dPoP: {
      enabled: true,
      nonceSecret: crypto.randomBytes(32),
      requireNonce: () => dpopNonce,
    },
    mTLS: {
      enabled: true,
      certificateBoundAccessTokens: true,
      tlsClientAuth: true,
      selfSignedTlsClientAuth: true,
      getCertificate: (ctx) => peerCertificate(ctx.req),
      certificateAuthorized: (ctx) => !!(ctx.req.socket && ctx.req.socket.authorized),
      certificateSubjectMatches: (ctx, property, expected) => {
        const cert = peerCertificate(ctx.req);
        if (!cert || property !== 'tls_client_auth_subject_dn') return false;
        return cert.subject.split('\n').join(',') === expected;
      },
    },
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
    DeviceCode: (_ctx, token) => (token && token.clientId === DEVICE_SHORT_CLIENT ? 1 : 600),
    IdToken: 3600,
    Interaction: 600,
    Session: 3600,
    Grant: Math.max(refreshTokenTTL, 3600),
  },
  enabledJWA: {
    clientAuthSigningAlgValues: ['HS256', 'HS384', 'HS512', ...ASYMMETRIC_ALGS],
    dPoPSigningAlgValues: DPOP_ALGS,
  },
  clientAuthMethods: [
    'client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none',
    'tls_client_auth', 'self_signed_tls_client_auth',
  ],
  discovery: mtlsBase ? {
    mtls_endpoint_aliases: { token_endpoint: `${mtlsBase}/token` },
  } : {},
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

// Last poll time (ms) by device code hash, for slow_down.
const devicePolls = new Map();

function tooFast(deviceCode) {
  if (!deviceCode) return false;
  const key = crypto.createHash('sha256').update(String(deviceCode)).digest('base64url');
  const now = Date.now();
  const last = devicePolls.get(key);
  if (devicePolls.size > 10000) devicePolls.clear();
  devicePolls.set(key, now);
  return last !== undefined && now - last < DEVICE_MIN_POLL_MS;
}

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

  if (form.get('grant_type') === DEVICE_CODE && tooFast(form.get('device_code'))) {
    bump(stats.token_errors_by_code, 'slow_down');
    sendJSON(res, 400, { error: 'slow_down', error_description: 'polling too often' });
    return;
  }

  // The stream is consumed; oidc-provider reads an already-read body from req.body.
  req.body = body;
  oidcCallback(req, res);
}

// The resource's own DPoP nonce (RFC 9449 section 9), and the proofs seen
// (jkt + jti) for replay detection, pruned by iat.
const resourceNonce = crypto.randomBytes(16).toString('base64url');
const seenProofs = new Map();
const PROOF_WINDOW = 60;

// checkProof verifies the DPoP proof of a resource request for token and
// returns undefined when it is good, or { error, description, nonce }.
async function checkProof(req, base, url, token, value) {
  const proof = req.headers.dpop;
  if (typeof proof !== 'string' || proof === '') {
    return { error: 'invalid_dpop_proof', description: 'DPoP proof missing' };
  }
  let payload;
  let protectedHeader;
  try {
    ({ payload, protectedHeader } = await jose.jwtVerify(proof, jose.EmbeddedJWK, { typ: 'dpop+jwt', algorithms: DPOP_ALGS }));
  } catch (err) {
    return { error: 'invalid_dpop_proof', description: `DPoP proof rejected (${err.code || 'invalid'})` };
  }
  const now = Math.floor(Date.now() / 1000);
  const ath = crypto.createHash('sha256').update(value).digest('base64url');
  const htu = URL.parse(String(payload.htu || ''));
  if (htu) { htu.search = ''; htu.hash = ''; }
  if (typeof payload.jti !== 'string' || !payload.jti) return { error: 'invalid_dpop_proof', description: 'jti missing' };
  if (payload.htm !== req.method) return { error: 'invalid_dpop_proof', description: 'htm mismatch' };
  if (!htu || htu.href !== new URL(url.pathname, base).href) return { error: 'invalid_dpop_proof', description: 'htu mismatch' };
  if (typeof payload.iat !== 'number' || Math.abs(now - payload.iat) > PROOF_WINDOW) return { error: 'invalid_dpop_proof', description: 'iat outside the window' };
  if (payload.ath !== ath) return { error: 'invalid_dpop_proof', description: 'ath mismatch' };
  const jkt = await jose.calculateJwkThumbprint(protectedHeader.jwk);
  if (jkt !== token.jkt) return { error: 'invalid_token', description: 'failed jkt verification' };
  if (resourceDpopNonce && payload.nonce !== resourceNonce) {
    stats.resource_dpop_nonce_challenges += 1;
    return { error: 'use_dpop_nonce', description: 'resource server requires a nonce', nonce: resourceNonce };
  }
  for (const [k, iat] of seenProofs) {
    if (iat < now - 2 * PROOF_WINDOW) seenProofs.delete(k);
  }
  const key = `${jkt}:${payload.jti}`;
  if (seenProofs.has(key)) return { error: 'invalid_dpop_proof', description: 'jti replayed' };
  seenProofs.set(key, payload.iat);
  return undefined;
}

async function handleResource(req, res, url) {
  stats.resource_requests += 1;
  const base = req.socket.encrypted ? mtlsBase : issuer;
  const unauthorized = (desc, scheme = 'Bearer', error = 'invalid_token', extra = {}) => {
    stats.resource_unauthorized += 1;
    const params = scheme === 'DPoP' ? `algs="${DPOP_ALGS.join(' ')}", ` : 'realm="fhir", ';
    sendJSON(res, 401, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'login', diagnostics: desc }] }, {
      'www-authenticate': `${scheme} ${params}error="${error}", error_description="${desc}"`,
      ...extra,
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
  const dpop = m[1].toLowerCase() === 'dpop';
  const token = await findAccessToken(m[2]);
  if (!token || token.isExpired) {
    unauthorized('token is invalid or expired', dpop ? 'DPoP' : 'Bearer');
    return;
  }
  if (token.jkt && !dpop) {
    unauthorized('token is DPoP-bound');
    return;
  }
  if (dpop) {
    if (!token.jkt) {
      unauthorized('token is not DPoP-bound', 'DPoP');
      return;
    }
    const bad = await checkProof(req, base, url, token, m[2]);
    if (bad) {
      unauthorized(bad.description, 'DPoP', bad.error, bad.nonce ? { 'dpop-nonce': bad.nonce } : {});
      return;
    }
    stats.resource_dpop_accepted += 1;
  }
  if (token['x5t#S256']) {
    const cert = peerCertificate(req);
    const x5t = cert ? crypto.createHash('sha256').update(cert.raw).digest('base64url') : '';
    if (x5t !== token['x5t#S256']) {
      unauthorized('failed x5t#S256 verification', dpop ? 'DPoP' : 'Bearer');
      return;
    }
    stats.resource_mtls_accepted += 1;
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
    'x-token-bound': [token.jkt ? 'jkt' : '', token['x5t#S256'] ? 'x5t' : ''].filter(Boolean).join(' '),
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

async function handleRequest(req, res) {
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
}
server.on('request', handleRequest);
if (tlsServer) tlsServer.on('request', handleRequest);

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
  mtls_base: mtlsBase,
})}\n`);
