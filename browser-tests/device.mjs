// The device authorization grant (RFC 8628, issue 17) with a real browser:
// a "TV" — this script as a plain HTTP client — asks /device_authorization
// for a code and polls /token; the citizen, on a phone in Chromium, opens
// the verification page, signs in, types the user code and allows; the TV
// then gets its tokens, and userinfo names the citizen.
//
// e2e.mjs calls deviceGrantFlow(kit) with its runner and helpers.
import assert from 'node:assert/strict';
import { cli, safeNavigate, zh } from './lib.mjs';

const ISSUER = process.env.IDP_ISSUER.replace(/\/$/, '');
const TIMEOUT = 30_000;
const GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const PHONE = {
  viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true,
  userAgent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 '
    + '(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1',
};

function jsonOf(out) {
  const i = out.indexOf('{');
  const j = out.lastIndexOf('}');
  assert.ok(i >= 0 && j > i, `no JSON object in: ${out}`);
  return JSON.parse(out.slice(i, j + 1));
}

export async function deviceGrantFlow(kit) {
  const { browser, step, flow, shot, assertFits, watch, setPage } = kit;
  const navigate = safeNavigate(kit.navigate);
  const path = (page) => new URL(page.url()).pathname;
  const tag = Date.now().toString(36).slice(-6);
  const viewer = { username: `tv_${tag}`, phone: `134${String(Date.now()).slice(-8)}`, password: 'Tv-pass-2024' };
  let tv; // { id, secret }
  let started; // the device authorization response
  const basic = () => `Basic ${Buffer.from(`${encodeURIComponent(tv.id)}:${encodeURIComponent(tv.secret)}`).toString('base64')}`;
  const post = async (endpoint, form) => {
    const r = await fetch(`${ISSUER}${endpoint}`, {
      method: 'POST',
      headers: { Authorization: basic(), 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form).toString(),
    });
    return { status: r.status, body: await r.json() };
  };
  const poll = () => post('/token', { grant_type: GRANT, device_code: started.device_code });

  await flow('device grant (RFC 8628, issue 17): a TV asks for a code, the citizen types it on a phone and allows, the TV gets tokens', async () => {
    await step('CLI: a TV client registered for the device grant, and a citizen', async () => {
      tv = jsonOf(cli(['client', 'create', '--name', `E2E 电视 ${tag}`, '--grant-type', GRANT,
        '--scope', 'openid profile', '--json']));
      tv = { id: tv.client_id, secret: tv.client_secret };
      assert.ok(tv.id && tv.secret, 'a confidential client with a secret');
      cli(['user', 'create', '--username', viewer.username, '--phone', viewer.phone], { IDP_NEW_PASSWORD: viewer.password });
    });

    await step('the TV starts: /device_authorization answers a user code and the verification URI; polling is pending', async () => {
      const r = await post('/device_authorization', { scope: 'openid profile' });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      started = r.body;
      assert.equal(started.verification_uri, `${ISSUER}/device`);
      assert.ok(started.user_code && started.device_code && started.interval >= 1, JSON.stringify(started));
      const p = await poll();
      assert.equal(p.body.error, 'authorization_pending', JSON.stringify(p.body));
    });

    const ctx = await browser.newContext({ ...PHONE, locale: 'zh-CN' });
    const page = await ctx.newPage();
    watch(page, 'device');
    setPage(page);
    await step('on the phone: the verification page asks to sign in, then for the code; the code typed, the TV app is named', async () => {
      let r = await navigate(page, () => page.goto(started.verification_uri, { timeout: TIMEOUT }));
      if (path(page) === '/login') {
        await page.locator('#username').fill(viewer.username);
        await page.locator('#password').fill(viewer.password);
        r = await navigate(page, () => page.locator('form[action="/login"] button[type=submit]').tap());
      }
      assert.equal(r.status(), 200);
      assert.equal(path(page), '/device', `expected the verification page, got ${page.url()}`);
      await shot(page, 'device-enter-code.png');
      await assertFits(page, PHONE.viewport.width);
      // As a person reads it off the TV: lower case, no dash.
      await page.locator('#user_code').fill(started.user_code.replace(/-/g, '').toLowerCase());
      r = await navigate(page, () => page.locator('#device-next').tap());
      assert.equal(r.status(), 200);
      assert.ok((await page.locator('#device-app').innerText()).includes(`E2E 电视 ${tag}`), 'the page names the TV app');
      const scopes = (await page.locator('#device-scopes li').allInnerTexts()).map((t) => t.trim());
      assert.deepEqual(scopes, [zh('scope_openid'), zh('scope_profile')], 'what the TV may do, in words (no scope names)');
      await shot(page, 'device-confirm.png');
      await assertFits(page, PHONE.viewport.width);
    });

    await step('"允许": the page confirms; the TV\'s next poll gets tokens and userinfo names the citizen', async () => {
      const r = await navigate(page, () => page.locator('#device-allow').tap());
      assert.equal(r.status(), 200);
      await page.locator('#device-approved').waitFor({ state: 'visible' });
      await shot(page, 'device-approved.png');
      let tokens;
      const deadline = Date.now() + 4 * TIMEOUT;
      while (!tokens && Date.now() < deadline) {
        // RFC 8628 §3.5: wait the interval between polls (slow_down adds 5 s)
        await new Promise((ok) => setTimeout(ok, (started.interval + 0.2) * 1000));
        const p = await poll();
        if (p.status === 200) tokens = p.body;
        else if (p.body.error === 'slow_down') started.interval += 5;
        else assert.equal(p.body.error, 'authorization_pending', JSON.stringify(p.body));
      }
      assert.ok(tokens?.access_token && tokens.id_token, `no tokens: ${JSON.stringify(tokens)}`);
      const u = await fetch(`${ISSUER}/userinfo`, { headers: { Authorization: `Bearer ${tokens.access_token}` } });
      assert.equal(u.status, 200);
      const info = await u.json();
      assert.equal(info.preferred_username, viewer.username, `userinfo: ${JSON.stringify(info)}`);
      // The device code is spent.
      const again = await poll();
      assert.ok(again.status >= 400, `a second redemption is refused: ${JSON.stringify(again.body)}`);
    });
    await ctx.close();
  });
}
