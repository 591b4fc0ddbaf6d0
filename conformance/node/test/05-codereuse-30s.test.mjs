// oidcc-codereuse-30seconds: the only test in the suite that waits 30 s.
import assert from 'node:assert/strict';
import { oidc, USER, configFor, newBrowser, authorize, exchange, oauthError, describeErr, sleep, check } from '../lib/rp.mjs';

check('code reuse after 30 s -> invalid_grant and the first access token is revoked', async () => {
  const basic = await configFor('basic');
  const b = newBrowser();
  const a = await authorize(basic, b, { scope: 'openid profile' });
  const t1 = await exchange(basic, a);
  const ui = await oidc.fetchUserInfo(basic, t1.access_token, t1.claims().sub);
  assert.equal(ui.sub, USER.sub);
  await sleep(30_000);
  const e = await oauthError(exchange(basic, a));
  assert.equal(e.error, 'invalid_grant', describeErr(e));
  const res = await fetch(basic.serverMetadata().userinfo_endpoint, {
    headers: { authorization: `Bearer ${t1.access_token}` },
  });
  await res.text();
  assert.equal(res.status, 401, 'access token from the first redemption must be revoked');
  const i = await oidc.tokenIntrospection(basic, t1.access_token);
  assert.equal(i.active, false, 'introspection of the revoked token');
});
