// RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0).
import assert from 'node:assert/strict';
import {
  oidc, POST_LOGOUT_URI, configFor, newBrowser, authRequest, exchange, codeFlow, oauthError, describeErr,
  check,
} from '../lib/rp.mjs';

check('RP-initiated logout: redirect to post_logout_redirect_uri with state, session ended', async () => {
  const basic = await configFor('basic');
  const b = newBrowser();
  const r = await codeFlow(basic, b, {});
  const state = oidc.randomState();
  const url = oidc.buildEndSessionUrl(basic, {
    id_token_hint: r.tokens.id_token,
    post_logout_redirect_uri: POST_LOGOUT_URI,
    state,
  });
  const out = await b.drive(url);
  assert.ok(out.callback, `expected a redirect to the RP, trace: ${out.trace.join(' | ')}`);
  assert.equal(out.callback.origin + out.callback.pathname, POST_LOGOUT_URI);
  assert.equal(out.callback.searchParams.get('state'), state);
  // The session is gone: prompt=none now fails with login_required.
  const a = await authRequest(basic, { prompt: 'none' });
  const after = await b.drive(a.url);
  assert.ok(after.callback, `expected an error redirect, trace: ${after.trace.join(' | ')}`);
  const e = await oauthError(exchange(basic, { ...a, callback: after.callback }));
  assert.equal(e.error, 'login_required', describeErr(e));
});

check('logout with an unregistered post_logout_redirect_uri does not redirect there', async () => {
  const basic = await configFor('basic');
  const b = newBrowser();
  const r = await codeFlow(basic, b, {});
  const url = oidc.buildEndSessionUrl(basic, {
    id_token_hint: r.tokens.id_token,
    post_logout_redirect_uri: 'http://127.0.0.1:9/evil',
    state: 'x',
  });
  const res = await b.request(url);
  assert.ok(!(res.location ?? '').startsWith('http://127.0.0.1:9/evil'), `redirected to ${res.location}`);
});
