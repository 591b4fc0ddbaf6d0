// Relying-party helpers built on openid-client v6. The library does the
// protocol work: discovery (issuer check), PKCE, state/iss/nonce checks of the
// authorization response, token exchange, ID token claim validation and JWS
// signature verification against the JWKS (enableNonRepudiationChecks),
// userinfo (sub check), refresh, client_credentials, introspection, revocation.
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import * as oidc from 'openid-client';
import { Browser } from './browser.mjs';

export { oidc };

export const CONF = JSON.parse(readFileSync(process.env.CONF_FILE, 'utf8'));
export const ISSUER = CONF.issuer;
export const USER = CONF.user;
export const REDIRECT_URI = 'http://127.0.0.1:9/cb';
export const POST_LOGOUT_URI = 'http://127.0.0.1:9/out';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const now = () => Math.floor(Date.now() / 1000);

/** Discovery + client configuration for one of the registered clients. */
export async function configFor(name) {
  const c = CONF.clients[name];
  if (!c) throw new Error(`no client ${name} in ${process.env.CONF_FILE}`);
  let auth;
  switch (c.auth) {
    case 'client_secret_post':
      auth = oidc.ClientSecretPost(c.client_secret);
      break;
    case 'none':
      auth = oidc.None();
      break;
    default:
      auth = oidc.ClientSecretBasic(c.client_secret);
  }
  const metadata = {
    id_token_signed_response_alg: c.alg ?? 'ES256',
    redirect_uris: [REDIRECT_URI],
  };
  if (c.client_secret) metadata.client_secret = c.client_secret;
  const config = await oidc.discovery(new URL(ISSUER), c.client_id, metadata, auth, {
    execute: [oidc.allowInsecureRequests, oidc.enableNonRepudiationChecks],
  });
  config.conf = c;
  return config;
}

export function newBrowser() {
  return new Browser(ISSUER);
}

/**
 * Build an authorization request with PKCE (unless pkce:false), state and nonce
 * (unless nonce:false). Returns {url, verifier, state, nonce}.
 */
export async function authRequest(config, params = {}, { pkce = true, nonce = true } = {}) {
  const out = { state: oidc.randomState() };
  const p = { redirect_uri: REDIRECT_URI, scope: 'openid', state: out.state, ...params };
  if (pkce) {
    out.verifier = oidc.randomPKCECodeVerifier();
    p.code_challenge = await oidc.calculatePKCECodeChallenge(out.verifier);
    p.code_challenge_method = 'S256';
  }
  if (nonce) {
    out.nonce = oidc.randomNonce();
    p.nonce = out.nonce;
  }
  out.url = oidc.buildAuthorizationUrl(config, p);
  return out;
}

/** Drive the browser through an authorization request; asserts we got back to the client. */
export async function authorize(config, browser, params = {}, opts = {}) {
  const req = await authRequest(config, params, opts);
  const start = opts.post
    ? { url: config.serverMetadata().authorization_endpoint, method: 'POST', form: Object.fromEntries(req.url.searchParams) }
    : req.url;
  const r = await browser.drive(start, { user: USER, ...opts });
  if (!r.callback) {
    throw new Error(`authorization did not return to the client; trace: ${r.trace.join(' | ')}; page: ${snippet(r.last.html)}`);
  }
  return { ...req, ...r };
}

/** Exchange the callback with the library (validates iss, state, nonce, max_age, signature). */
export async function exchange(config, a, checks = {}) {
  return oidc.authorizationCodeGrant(config, a.callback, {
    pkceCodeVerifier: a.verifier,
    expectedState: a.state,
    expectedNonce: a.nonce,
    ...checks,
  });
}

/** Full login + code flow. Returns {tokens, claims, ...authorize result}. */
export async function codeFlow(config, browser, params = {}, opts = {}) {
  const a = await authorize(config, browser, params, opts);
  const tokens = await exchange(config, a, opts.checks);
  return { ...a, tokens, claims: tokens.claims() };
}

export function snippet(html = '') {
  return html.replace(/\s+/g, ' ').slice(0, 300);
}

export function jwtHeader(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[0], 'base64url').toString('utf8'));
}

export function jwtPayload(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));
}

/** Await a promise that must reject with an OAuth error; returns the error. */
export async function oauthError(promise) {
  try {
    const v = await promise;
    throw Object.assign(new Error(`expected an OAuth error, got success: ${JSON.stringify(v).slice(0, 200)}`), {
      unexpectedSuccess: true,
    });
  } catch (e) {
    if (e.unexpectedSuccess) throw e;
    return e;
  }
}

/**
 * Register a check. Errors are flattened into one readable message here, inside
 * the test process, because the runner's IPC drops non-enumerable fields such
 * as the message of an openid-client error's cause.
 */
export function check(name, fn) {
  test(name, async (t) => {
    try {
      await fn(t);
    } catch (e) {
      const flat = new Error(explain(e));
      flat.stack = `${flat.message}`;
      throw flat;
    }
  });
}

export function explain(err) {
  const parts = [];
  let e = err;
  for (let depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    if (typeof e !== 'object' || !('message' in e)) {
      parts.push(safeJson(e));
      break;
    }
    const msg = String(e.message).split('\n').filter((l) => l.trim()).slice(0, 6).join(' | ');
    const tags = [];
    if (e.error) tags.push(`error=${e.error}`);
    if (e.error_description) tags.push(`error_description=${e.error_description}`);
    if (e.status) tags.push(`status=${e.status}`);
    if (e.code && e.code !== 'ERR_ASSERTION') tags.push(`code=${e.code}`);
    parts.push(tags.length ? `${msg} [${tags.join(' ')}]` : msg);
    e = e.cause;
  }
  return parts.join(' <- ');
}

function safeJson(v) {
  try {
    const skip = new Set(['body', 'claims', 'data', 'key', 'response', 'jwt']);
    const s = JSON.stringify(v, (k, x) => (skip.has(k) ? undefined : x));
    return (s ?? String(v)).slice(0, 240);
  } catch {
    return String(v).slice(0, 400);
  }
}

/** Describe an openid-client error compactly for assertion messages. */
export function describeErr(e) {
  return `${e?.name}: ${e?.message} (error=${e?.error} status=${e?.status} code=${e?.code})`;
}

/** Plain fetch helper returning {status, json, headers}. */
export async function httpJson(url, init = {}) {
  const res = await fetch(url, { redirect: 'manual', ...init });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text, headers: res.headers };
}
