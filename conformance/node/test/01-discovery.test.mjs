// Config plan: oidcc-discovery-endpoint-verification, JWKS checks.
import assert from 'node:assert/strict';
import * as jose from 'jose';
import { ISSUER, configFor, httpJson, check } from '../lib/rp.mjs';

check('discovery: openid-client accepts metadata and issuer equals IDP_ISSUER', async () => {
  // discovery() itself fails when the issuer in the document differs from the URL.
  const config = await configFor('basic');
  const md = config.serverMetadata();
  assert.equal(md.issuer, ISSUER, 'issuer must equal the configured issuer exactly');
});

check('discovery: required metadata values and all endpoints on the issuer', async () => {
  const { status, json: md, headers } = await httpJson(`${ISSUER}/.well-known/openid-configuration`);
  assert.equal(status, 200);
  assert.match(headers.get('content-type') ?? '', /application\/json/);
  const endpoints = {
    authorization_endpoint: '/authorize',
    token_endpoint: '/token',
    userinfo_endpoint: '/userinfo',
    jwks_uri: '/jwks',
    revocation_endpoint: '/revoke',
    introspection_endpoint: '/introspect',
    end_session_endpoint: '/logout',
  };
  for (const [k, path] of Object.entries(endpoints)) {
    assert.equal(typeof md[k], 'string', `${k} missing`);
    assert.ok(md[k].startsWith(`${ISSUER}/`), `${k}=${md[k]} is not on the issuer ${ISSUER}`);
    assert.equal(md[k], `${ISSUER}${path}`, `${k}`);
  }
  assert.deepEqual(md.response_types_supported, ['code']);
  assert.ok(md.subject_types_supported?.length > 0, 'subject_types_supported required');
  assert.ok(md.code_challenge_methods_supported?.includes('S256'), 'S256 PKCE');
  assert.ok(!md.code_challenge_methods_supported.includes('plain'), 'plain PKCE must not be offered');
  for (const alg of ['ES256', 'RS256']) {
    assert.ok(md.id_token_signing_alg_values_supported?.includes(alg), `id_token alg ${alg}`);
  }
  assert.ok(!md.id_token_signing_alg_values_supported.includes('none'), 'alg none must not be offered');
  for (const m of ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none']) {
    assert.ok(md.token_endpoint_auth_methods_supported?.includes(m), `auth method ${m}`);
  }
  for (const s of ['openid', 'profile', 'email', 'phone', 'address', 'offline_access']) {
    assert.ok(md.scopes_supported?.includes(s), `scope ${s}`);
  }
  for (const g of ['authorization_code', 'refresh_token', 'client_credentials']) {
    if (md.grant_types_supported) assert.ok(md.grant_types_supported.includes(g), `grant ${g}`);
  }
  assert.equal(md.claims_parameter_supported, true);
  assert.equal(md.authorization_response_iss_parameter_supported, true);
});

check('discovery: JWKS keys have kid/alg/use, unique kids, public only, ES256 + RS256 present', async () => {
  const config = await configFor('basic');
  const { status, json } = await httpJson(config.serverMetadata().jwks_uri);
  assert.equal(status, 200);
  assert.ok(Array.isArray(json?.keys) && json.keys.length > 0, 'keys array');
  const kids = new Set();
  const algs = new Set();
  for (const k of json.keys) {
    assert.equal(typeof k.kid, 'string', `key without kid: ${JSON.stringify(k)}`);
    assert.ok(!kids.has(k.kid), `duplicate kid ${k.kid}`);
    kids.add(k.kid);
    assert.equal(typeof k.alg, 'string', `key ${k.kid} without alg`);
    assert.equal(k.use, 'sig', `key ${k.kid} use`);
    for (const priv of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) {
      assert.ok(!(priv in k), `key ${k.kid} leaks private member ${priv}`);
    }
    if (k.alg === 'ES256') {
      assert.equal(k.kty, 'EC', `key ${k.kid} kty`);
      assert.equal(k.crv, 'P-256', `key ${k.kid} crv`);
    }
    if (k.alg === 'RS256') assert.equal(k.kty, 'RSA');
    await jose.importJWK(k, k.alg); // must be a valid public key
    algs.add(k.alg);
  }
  assert.ok(algs.has('ES256'), 'an ES256 key');
  assert.ok(algs.has('RS256'), 'an RS256 key');
});
