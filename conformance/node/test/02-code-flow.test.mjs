// Basic plan: authorization code flow checks driven by openid-client.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  oidc, ISSUER, USER, CONF, REDIRECT_URI, configFor, newBrowser, authRequest, authorize, exchange,
  codeFlow, jwtHeader, oauthError, describeErr, sleep, now, snippet,
  check,
} from '../lib/rp.mjs';
import { inputTag, attr } from '../lib/browser.mjs';

const b = newBrowser(); // the logged-in user agent shared by this file
let basic;
let firstIdToken;

function atHash(accessToken) {
  const d = createHash('sha256').update(accessToken, 'ascii').digest();
  return d.subarray(0, d.length / 2).toString('base64url');
}

check('happy flow: code+PKCE, ID token verified against JWKS, userinfo sub equals id_token sub', async () => {
  basic = await configFor('basic');
  const r = await codeFlow(basic, b, { scope: 'openid profile email' });
  assert.ok(r.pages.includes('login'), `expected a login page, got pages=${r.pages}`);
  assert.equal(r.callback.searchParams.get('iss'), ISSUER, 'iss authorization response parameter');
  assert.equal(r.callback.searchParams.get('state'), r.state, 'state echoed');
  const idt = r.tokens.id_token;
  assert.equal(typeof idt, 'string', 'id_token issued');
  const h = jwtHeader(idt);
  assert.equal(h.alg, 'ES256', 'default ID token alg');
  assert.equal(typeof h.kid, 'string', 'ID token header kid');
  assert.equal(r.tokens.token_type.toLowerCase(), 'bearer');
  assert.ok(r.tokens.expires_in > 0, 'expires_in');
  const c = r.claims;
  const t = now();
  assert.equal(c.iss, ISSUER);
  assert.equal(c.sub, USER.sub, 'sub is the user created by the CLI');
  assert.ok([].concat(c.aud).includes(basic.clientMetadata().client_id), 'aud contains client_id');
  assert.ok(c.exp > t, 'exp in the future');
  assert.ok(c.iat <= t + 5 && c.iat > t - 300, `iat ${c.iat} vs now ${t}`);
  assert.equal(typeof c.auth_time, 'number', 'auth_time');
  assert.ok(c.auth_time <= t + 5 && c.auth_time > t - 300, 'auth_time recent');
  assert.equal(c.nonce, r.nonce);
  assert.equal(c.at_hash, atHash(r.tokens.access_token), 'at_hash');
  assert.equal(c.azp, basic.clientMetadata().client_id, 'azp');
  assert.equal(typeof c.sid, 'string', 'sid');
  assert.ok(c.acr !== undefined, 'acr');
  assert.ok(Array.isArray(c.amr) && c.amr.length > 0, 'amr array');
  const ui = await oidc.fetchUserInfo(basic, r.tokens.access_token, c.sub); // library checks sub
  assert.equal(ui.sub, c.sub);
  assert.equal(ui.name, USER.name);
  assert.equal(ui.preferred_username, USER.username);
  assert.equal(ui.email, USER.email);
  firstIdToken = idt;
});

check('nonce returned unchanged; no nonce in request -> none in ID token', async () => {
  const r = await codeFlow(basic, b, { scope: 'openid' });
  assert.equal(r.claims.nonce, r.nonce);
  assert.deepEqual(r.pages, [], 'session reused without interaction');
  // Without nonce the library requires the ID token to carry no nonce.
  const r2 = await codeFlow(basic, b, { scope: 'openid' }, { nonce: false, checks: { idTokenExpected: true } });
  assert.equal(r2.claims.nonce, undefined);
});

check('scope openid: userinfo returns sub but no profile/email/phone claims', async () => {
  const r = await codeFlow(basic, b, { scope: 'openid' });
  const ui = await oidc.fetchUserInfo(basic, r.tokens.access_token, r.claims.sub);
  assert.equal(ui.sub, USER.sub);
  for (const k of ['name', 'preferred_username', 'email', 'phone_number']) {
    assert.equal(ui[k], undefined, `${k} must not be released for scope=openid`);
  }
});

check('scope profile: name, preferred_username, updated_at', async () => {
  const r = await codeFlow(basic, b, { scope: 'openid profile' });
  const ui = await oidc.fetchUserInfo(basic, r.tokens.access_token, r.claims.sub);
  assert.equal(ui.name, USER.name);
  assert.equal(ui.preferred_username, USER.username);
  assert.equal(typeof ui.updated_at, 'number', 'updated_at is a number (seconds)');
  assert.equal(ui.email, undefined, 'email not released without email scope');
});

check('scope email: email, email_verified', async () => {
  const r = await codeFlow(basic, b, { scope: 'openid email' });
  const ui = await oidc.fetchUserInfo(basic, r.tokens.access_token, r.claims.sub);
  assert.equal(ui.email, USER.email);
  assert.equal(typeof ui.email_verified, 'boolean');
  assert.equal(ui.phone_number, undefined, 'phone not released without phone scope');
  assert.equal(ui.name, undefined, 'name not released without profile scope');
});

check('scope phone: phone_number, phone_number_verified', async () => {
  const r = await codeFlow(basic, b, { scope: 'openid phone' });
  const ui = await oidc.fetchUserInfo(basic, r.tokens.access_token, r.claims.sub);
  assert.ok(String(ui.phone_number ?? '').includes(USER.phone), `phone_number=${ui.phone_number}`);
  assert.equal(typeof ui.phone_number_verified, 'boolean');
  assert.equal(ui.email, undefined);
});

check('scope address: accepted and granted', async () => {
  const r = await codeFlow(basic, b, { scope: 'openid address' });
  if (r.tokens.scope !== undefined) {
    assert.ok(r.tokens.scope.split(' ').includes('address'), `granted scope ${r.tokens.scope}`);
  }
  const ui = await oidc.fetchUserInfo(basic, r.tokens.access_token, r.claims.sub);
  if (ui.address !== undefined) assert.equal(typeof ui.address, 'object');
  assert.equal(ui.email, undefined);
});

check('scope offline_access: refresh_token issued', async () => {
  const r = await codeFlow(basic, b, { scope: 'openid offline_access' });
  assert.equal(typeof r.tokens.refresh_token, 'string', 'refresh_token');
  assert.ok(r.tokens.refresh_token.length > 0);
});

check('all scopes in another order ("email phone address profile openid")', async () => {
  const r = await codeFlow(basic, b, { scope: 'email phone address profile openid' });
  const ui = await oidc.fetchUserInfo(basic, r.tokens.access_token, r.claims.sub);
  assert.equal(ui.email, USER.email);
  assert.equal(ui.name, USER.name);
  assert.ok(String(ui.phone_number).includes(USER.phone));
});

check('prompt=none while logged in returns a code without interaction', async () => {
  const r = await codeFlow(basic, b, { prompt: 'none' });
  assert.deepEqual(r.pages, []);
  assert.equal(r.claims.sub, USER.sub);
});

check('prompt=none without a session -> error=login_required (with state and iss)', async () => {
  const fresh = newBrowser();
  const a = await authRequest(basic, { prompt: 'none' });
  const r = await fresh.drive(a.url);
  assert.ok(r.callback, `expected redirect to client, got ${r.last.status} ${snippet(r.last.html)}`);
  assert.equal(r.callback.origin + r.callback.pathname, REDIRECT_URI);
  assert.equal(r.callback.searchParams.get('code'), null, 'no code');
  assert.equal(r.callback.searchParams.get('state'), a.state);
  assert.equal(r.callback.searchParams.get('iss'), ISSUER);
  const e = await oauthError(exchange(basic, { ...a, callback: r.callback }));
  assert.ok(e instanceof oidc.AuthorizationResponseError, describeErr(e));
  assert.equal(e.error, 'login_required');
});

check('prompt=login forces a login although a session exists', async () => {
  const t0 = now();
  await sleep(1100);
  const r = await codeFlow(basic, b, { prompt: 'login' });
  assert.ok(r.pages.includes('login'), `login page expected, pages=${r.pages}`);
  assert.ok(r.claims.auth_time > t0, `auth_time ${r.claims.auth_time} must be > ${t0} (fresh login)`);
});

check('max_age=1: after 2 s a new login is required and auth_time is fresh', async () => {
  await codeFlow(basic, b, {}); // session exists
  await sleep(2100);
  const t0 = now();
  const r = await codeFlow(basic, b, { max_age: '1' }, { checks: { maxAge: 1 } });
  assert.ok(r.pages.includes('login'), `login page expected, pages=${r.pages}`);
  assert.ok(r.claims.auth_time >= t0, `auth_time ${r.claims.auth_time} must be >= ${t0} (fresh login)`);
});

check('max_age=10000 with a session: no login, auth_time present', async () => {
  const r = await codeFlow(basic, b, { max_age: '10000' }, { checks: { maxAge: 10000 } });
  assert.deepEqual(r.pages, []);
  assert.equal(typeof r.claims.auth_time, 'number');
});

check('POST authorization request (form body) works like GET', async () => {
  const r = await codeFlow(basic, b, { scope: 'openid email' }, { post: true });
  assert.equal(r.claims.sub, USER.sub);
  assert.equal(r.claims.nonce, r.nonce);
});

check('unknown authorization parameter is ignored', async () => {
  const r = await codeFlow(basic, b, { foo_unknown_param: 'bar', another: 'x y' });
  assert.equal(r.claims.sub, USER.sub);
});

check('display, claims_locales, acr_values, ui_locales accepted', async () => {
  const r = await codeFlow(basic, b, { display: 'page', claims_locales: 'se', acr_values: '1 2', ui_locales: 'en' });
  assert.equal(r.claims.sub, USER.sub);
});

check('acr_values: the ID token asserts a supported level the account really has', async () => {
  const d = basic.serverMetadata();
  assert.ok(d.acr_values_supported.includes('urn:idp:loa:1'), 'discovery lists acr values');
  // The CLI-made user has no proven identity: L1 whatever is asked for voluntarily.
  const r = await codeFlow(basic, b, { acr_values: 'urn:idp:loa:1' });
  assert.equal(r.claims.acr, 'urn:idp:loa:1');
  assert.ok(r.claims.amr.includes('pwd'), `amr ${r.claims.amr}`);
  const higher = await codeFlow(basic, b, { acr_values: 'urn:idp:loa:4' });
  assert.equal(higher.claims.acr, 'urn:idp:loa:1', 'a voluntary level is never inflated');
});

check('essential acr the account cannot reach -> unmet_authentication_requirements', async () => {
  const a = await authRequest(basic, {
    claims: JSON.stringify({ id_token: { acr: { essential: true, values: ['urn:idp:loa:4'] } } }),
  });
  const r = await b.drive(a.url, { user: USER });
  assert.ok(r.callback, `expected a redirect to the client, pages=${r.pages}`);
  assert.equal(r.callback.searchParams.get('error'), 'unmet_authentication_requirements');
  assert.equal(r.callback.searchParams.get('code'), null);
  assert.equal(r.callback.searchParams.get('state'), a.state);
});

check('claims parameter: essential email in the ID token', async () => {
  const r = await codeFlow(basic, b, {
    scope: 'openid',
    claims: JSON.stringify({ id_token: { email: { essential: true } } }),
  });
  assert.equal(r.claims.email, USER.email);
});

check('id_token_hint with prompt=none returns a code for the same user', async () => {
  assert.ok(firstIdToken, 'needs the happy flow id_token');
  const r = await codeFlow(basic, b, { prompt: 'none', id_token_hint: firstIdToken });
  assert.deepEqual(r.pages, []);
  assert.equal(r.claims.sub, USER.sub);
});

check('login_hint prefills the username field', async () => {
  const a = await authRequest(basic, { login_hint: USER.username });
  const r = await newBrowser().drive(a.url, { stopAt: 'login' });
  assert.equal(r.stoppedAt, 'login', `login page expected: ${r.trace.join(' | ')}`);
  const tag = inputTag(r.last.html, 'username');
  assert.ok(tag, 'username input');
  assert.equal(attr(tag, 'value'), USER.username, `username input: ${tag}`);
});

check('ui_locales=en renders English, default is zh-CN', async () => {
  const en = await newBrowser().drive((await authRequest(basic, { ui_locales: 'en' })).url, { stopAt: 'login' });
  assert.equal(en.stoppedAt, 'login');
  assert.match(en.last.html, /<html[^>]*\blang="en"/);
  const def = await newBrowser().drive((await authRequest(basic, {})).url, { stopAt: 'login' });
  assert.equal(def.stoppedAt, 'login');
  assert.match(def.last.html, /<html[^>]*\blang="zh-CN"/);
});

check('wrong password: login page shown again, no redirect', async () => {
  const a = await authRequest(basic, {});
  const r = await newBrowser().drive(a.url, { user: { username: USER.username, password: 'wrong-password-1' } });
  assert.equal(r.callback, undefined, 'must not reach the client');
  assert.equal(r.stoppedAt, 'login', `login page again expected, got ${r.last.status}`);
  assert.ok([200, 401].includes(r.last.status), `status ${r.last.status}`);
});

async function assertNoRedirect(url, what) {
  const res = await b.request(url);
  assert.equal(res.status, 400, `${what}: expected 400 error page, got ${res.status} Location=${res.location}`);
  assert.equal(res.location, undefined, `${what}: must not redirect`);
}

check('unregistered redirect_uri -> error page, no redirect', async () => {
  const a = await authRequest(basic, { redirect_uri: 'http://127.0.0.1:9/evil' });
  await assertNoRedirect(a.url, 'unregistered redirect_uri');
});

check('unknown client_id -> error page, no redirect', async () => {
  const a = await authRequest(basic, {});
  a.url.searchParams.set('client_id', 'no-such-client');
  await assertNoRedirect(a.url, 'unknown client');
});

check('redirect_uri with an added query -> error page, no redirect', async () => {
  const a = await authRequest(basic, { redirect_uri: `${REDIRECT_URI}?x=1` });
  await assertNoRedirect(a.url, 'redirect_uri with query');
});

check('missing redirect_uri -> no code issued', async () => {
  const a = await authRequest(basic, {});
  a.url.searchParams.delete('redirect_uri');
  const res = await b.request(a.url);
  const loc = res.location ? new URL(res.location) : undefined;
  assert.ok(!loc?.searchParams.get('code'), `must not issue a code: ${res.status} ${res.location}`);
});

check('missing response_type -> no code issued', async () => {
  const a = await authRequest(basic, {});
  a.url.searchParams.delete('response_type');
  const res = await b.request(a.url);
  const loc = res.location ? new URL(res.location) : undefined;
  assert.ok(!loc?.searchParams.get('code'), `must not issue a code: ${res.status} ${res.location}`);
  if (loc && loc.origin !== new URL(ISSUER).origin) {
    assert.ok(['invalid_request', 'unsupported_response_type'].includes(loc.searchParams.get('error')),
      `error=${loc.searchParams.get('error')}`);
    assert.equal(loc.searchParams.get('state'), a.state, 'state on the error redirect');
    assert.equal(loc.searchParams.get('iss'), ISSUER, 'iss on the error redirect');
  }
});

check('RS256 client gets an RS256 ID token verified by the library', async () => {
  const rs = await configFor('rs256');
  const r = await codeFlow(rs, b, { scope: 'openid profile' });
  const h = jwtHeader(r.tokens.id_token);
  assert.equal(h.alg, 'RS256');
  assert.equal(r.claims.sub, USER.sub);
  assert.ok([].concat(r.claims.aud).includes(CONF.clients.rs256.client_id));
  const ui = await oidc.fetchUserInfo(rs, r.tokens.access_token, r.claims.sub);
  assert.equal(ui.name, USER.name);
});

check('consent: deny -> access_denied; allow -> code; then remembered', async () => {
  const cfg = await configFor('consent');
  const a = await authRequest(cfg, { scope: 'openid profile' });
  const denied = await b.drive(a.url, { user: USER, consent: 'deny' });
  assert.ok(denied.pages.includes('consent'), `consent page expected, pages=${denied.pages}`);
  assert.ok(denied.callback, 'deny redirects to the client');
  assert.equal(denied.callback.searchParams.get('error'), 'access_denied');
  assert.equal(denied.callback.searchParams.get('state'), a.state);
  assert.equal(denied.callback.searchParams.get('iss'), ISSUER);
  const e = await oauthError(exchange(cfg, { ...a, callback: denied.callback }));
  assert.equal(e.error, 'access_denied', describeErr(e));

  const ok = await codeFlow(cfg, b, { scope: 'openid profile' });
  assert.ok(ok.pages.includes('consent'), `consent page expected, pages=${ok.pages}`);
  const again = await codeFlow(cfg, b, { scope: 'openid profile' });
  assert.deepEqual(again.pages, [], 'consent remembered');
});

check('prompt=select_account offers the account chooser; continue -> same user', async () => {
  const r = await codeFlow(basic, b, { prompt: 'select_account' }, { account: 'continue' });
  assert.ok(r.pages.includes('select-account'), `select-account page expected, pages=${r.pages}; trace: ${r.trace.join(" | ")}`);
  assert.equal(r.claims.sub, USER.sub);
});

check('prompt=select_account; switch -> a new login is required', async () => {
  const r = await codeFlow(basic, b, { prompt: 'select_account' }, { account: 'switch' });
  assert.ok(r.pages.includes('select-account'), `select-account page expected, pages=${r.pages}; trace: ${r.trace.join(" | ")}`);
  assert.ok(r.pages.includes('login'), `login page expected after switch, pages=${r.pages}`);
  assert.equal(r.claims.sub, USER.sub);
});

check('public client with PKCE: token exchange with auth method none', async () => {
  const pub = await configFor('public');
  const r = await codeFlow(pub, b, { scope: 'openid email' });
  assert.equal(r.claims.sub, USER.sub);
  assert.ok([].concat(r.claims.aud).includes(CONF.clients.public.client_id));
});

check('public client without PKCE -> error, no tokens', async () => {
  const pub = await configFor('public');
  const a = await authRequest(pub, {}, { pkce: false });
  const r = await b.drive(a.url, { user: USER });
  if (!r.callback) {
    assert.ok(r.last.status >= 400, `expected an error, got ${r.last.status}`);
    return;
  }
  if (r.callback.searchParams.get('error')) {
    assert.equal(r.callback.searchParams.get('code'), null);
    assert.equal(r.callback.searchParams.get('error'), 'invalid_request');
    return; // rejected at the authorization endpoint
  }
  // Otherwise the token endpoint must refuse the code without a verifier.
  const e = await oauthError(exchange(pub, { ...a, callback: r.callback }));
  assert.ok(['invalid_grant', 'invalid_request'].includes(e.error), describeErr(e));
});
