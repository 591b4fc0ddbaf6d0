// Token endpoint, refresh, client_credentials, introspection and revocation
// checks driven by openid-client.
import { before } from 'node:test';
import assert from 'node:assert/strict';
import {
  oidc, ISSUER, USER, CONF, REDIRECT_URI, configFor, newBrowser, authorize, exchange, codeFlow,
  oauthError, describeErr, httpJson, now,
  check,
} from '../lib/rp.mjs';

const b = newBrowser();
let basic;

before(async () => {
  basic = await configFor('basic');
  await codeFlow(basic, b, {}); // log in once (and consent for the basic client)
});

async function userinfoStatus(accessToken) {
  const md = basic.serverMetadata();
  const res = await fetch(md.userinfo_endpoint, { headers: { authorization: `Bearer ${accessToken}` } });
  await res.text();
  return res.status;
}

function basicAuth(id, secret) {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

check('client_secret_post: code flow and token exchange', async () => {
  const post = await configFor('post');
  const r = await codeFlow(post, b, { scope: 'openid email' });
  assert.equal(r.claims.sub, USER.sub);
  assert.ok([].concat(r.claims.aud).includes(CONF.clients.post.client_id));
  const ui = await oidc.fetchUserInfo(post, r.tokens.access_token, r.claims.sub);
  assert.equal(ui.email, USER.email);
});

check('wrong client secret -> 401 invalid_client', async () => {
  const c = CONF.clients.basic;
  const res = await httpJson(basic.serverMetadata().token_endpoint, {
    method: 'POST',
    headers: { authorization: basicAuth(c.client_id, 'wrong-secret'), 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials',
  });
  assert.equal(res.status, 401, `status ${res.status} ${res.text}`);
  assert.equal(res.json?.error, 'invalid_client');
  // and the library sees the same through client_secret_post
  const bad = await oidc.discovery(new URL(ISSUER), CONF.clients.post.client_id,
    { client_secret: 'nope', id_token_signed_response_alg: 'ES256' }, oidc.ClientSecretPost('nope'),
    { execute: [oidc.allowInsecureRequests] });
  const e = await oauthError(oidc.clientCredentialsGrant(bad));
  assert.equal(e.status, 401, describeErr(e));
  if (e instanceof oidc.ResponseBodyError) assert.equal(e.error, 'invalid_client', describeErr(e));
});

check('code reuse -> invalid_grant', async () => {
  const a = await authorize(basic, b, {});
  const t1 = await exchange(basic, a);
  assert.equal(typeof t1.access_token, 'string');
  const e = await oauthError(exchange(basic, a));
  assert.ok(e instanceof oidc.ResponseBodyError, describeErr(e));
  assert.equal(e.error, 'invalid_grant');
  assert.equal(e.status, 400);
});

check('code issued to one client cannot be redeemed by another -> invalid_grant', async () => {
  const other = await configFor('other');
  const a = await authorize(basic, b, {});
  const e = await oauthError(exchange(other, a));
  assert.equal(e.error, 'invalid_grant', describeErr(e));
});

check('code redeemed with a different redirect_uri -> invalid_grant', async () => {
  const a = await authorize(basic, b, {});
  const cb = new URL('http://127.0.0.1:9/elsewhere');
  cb.search = a.callback.search;
  const e = await oauthError(exchange(basic, { ...a, callback: cb }));
  assert.equal(e.error, 'invalid_grant', describeErr(e));
});

check('PKCE wrong code_verifier -> invalid_grant', async () => {
  const a = await authorize(basic, b, {});
  const e = await oauthError(exchange(basic, { ...a, verifier: oidc.randomPKCECodeVerifier() }));
  assert.equal(e.error, 'invalid_grant', describeErr(e));
});

check('PKCE missing code_verifier when a challenge was sent -> error', async () => {
  const a = await authorize(basic, b, {});
  const e = await oauthError(exchange(basic, { ...a, verifier: undefined }));
  assert.ok(['invalid_grant', 'invalid_request'].includes(e.error), describeErr(e));
});

check('bogus code -> invalid_grant', async () => {
  const e = await oauthError(oidc.genericGrantRequest(basic, 'authorization_code', {
    code: 'not-a-real-code', redirect_uri: REDIRECT_URI, code_verifier: oidc.randomPKCECodeVerifier(),
  }));
  assert.equal(e.error, 'invalid_grant', describeErr(e));
});

check('unsupported grant type -> unsupported_grant_type', async () => {
  const e = await oauthError(oidc.genericGrantRequest(basic, 'urn:example:bogus-grant', {}));
  assert.equal(e.error, 'unsupported_grant_type', describeErr(e));
});

check('refresh token: new tokens, rotation, old refresh token -> invalid_grant', async () => {
  const r = await codeFlow(basic, b, { scope: 'openid profile offline_access' });
  const rt1 = r.tokens.refresh_token;
  assert.equal(typeof rt1, 'string', 'refresh_token issued');
  const t2 = await oidc.refreshTokenGrant(basic, rt1);
  assert.equal(typeof t2.access_token, 'string');
  assert.notEqual(t2.access_token, r.tokens.access_token, 'new access token');
  assert.equal(typeof t2.refresh_token, 'string', 'rotated refresh token returned');
  assert.notEqual(t2.refresh_token, rt1, 'refresh token rotated');
  if (t2.id_token) {
    const c2 = t2.claims(); // validated by the library
    assert.equal(c2.sub, r.claims.sub, 'refreshed ID token sub');
    assert.equal(c2.iss, ISSUER);
    if (c2.auth_time !== undefined) assert.equal(c2.auth_time, r.claims.auth_time, 'auth_time of the original login');
  }
  const ui = await oidc.fetchUserInfo(basic, t2.access_token, r.claims.sub);
  assert.equal(ui.name, USER.name);
  const e = await oauthError(oidc.refreshTokenGrant(basic, rt1));
  assert.equal(e.error, 'invalid_grant', describeErr(e));
});

check('client_credentials grant', async () => {
  const t = await oidc.clientCredentialsGrant(basic);
  assert.equal(typeof t.access_token, 'string');
  assert.equal(t.token_type.toLowerCase(), 'bearer');
  assert.equal(t.id_token, undefined, 'no ID token for client_credentials');
  assert.equal(t.refresh_token, undefined, 'no refresh token for client_credentials (RFC 6749 4.4.3)');
  const i = await oidc.tokenIntrospection(basic, t.access_token);
  assert.equal(i.active, true);
  assert.equal(i.client_id, CONF.clients.basic.client_id);
});

check('client_credentials refused for a public client', async () => {
  const pub = await configFor('public');
  const e = await oauthError(oidc.clientCredentialsGrant(pub));
  assert.ok(['unauthorized_client', 'invalid_client'].includes(e.error), describeErr(e));
});

check('introspection: active token, then inactive after revocation; userinfo 401', async () => {
  const r = await codeFlow(basic, b, { scope: 'openid profile' });
  const at = r.tokens.access_token;
  const i1 = await oidc.tokenIntrospection(basic, at);
  assert.equal(i1.active, true);
  assert.equal(i1.client_id, CONF.clients.basic.client_id);
  assert.equal(i1.sub, USER.sub);
  assert.ok(i1.exp > now(), 'exp');
  if (i1.scope !== undefined) assert.ok(i1.scope.split(' ').includes('profile'), `scope ${i1.scope}`);
  assert.equal(await userinfoStatus(at), 200);
  await oidc.tokenRevocation(basic, at);
  const i2 = await oidc.tokenIntrospection(basic, at);
  assert.equal(i2.active, false, 'revoked token must be inactive');
  assert.equal(await userinfoStatus(at), 401, 'userinfo with a revoked token');
  const unknown = await oidc.tokenIntrospection(basic, 'not-a-token');
  assert.equal(unknown.active, false, 'unknown token inactive');
});

check('introspection requires client authentication', async () => {
  const res = await httpJson(basic.serverMetadata().introspection_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'token=whatever',
  });
  assert.equal(res.status, 401, `status ${res.status} ${res.text}`);
});

check('revoked refresh token cannot be used', async () => {
  const r = await codeFlow(basic, b, { scope: 'openid offline_access' });
  await oidc.tokenRevocation(basic, r.tokens.refresh_token, { token_type_hint: 'refresh_token' });
  const e = await oauthError(oidc.refreshTokenGrant(basic, r.tokens.refresh_token));
  assert.equal(e.error, 'invalid_grant', describeErr(e));
});

check('userinfo with an invalid token -> 401 with WWW-Authenticate', async () => {
  const res = await fetch(basic.serverMetadata().userinfo_endpoint, { headers: { authorization: 'Bearer garbage' } });
  await res.text();
  assert.equal(res.status, 401);
  assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer/i);
});
