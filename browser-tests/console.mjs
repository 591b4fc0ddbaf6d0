// The operator console (issue 15) in a real browser: a platform admin set
// up from the CLI enrols a passkey in the personal centre (Chromium's
// virtual authenticator), signs in to /admin with it (the console is an
// OIDC client of the provider: L3 with a strong factor), then, by clicks
// only, creates an app, grants it a plugin scope, suspends a citizen (whose
// password sign-in is then refused with the localized message), restores
// them, decides an appeal a citizen filed through the web form and opens the
// health-code statistics inside the console. Every console page is checked
// with axe-core and photographed at 1366x900 and at phone width (390x844),
// where nothing may overflow horizontally.
//
// e2e.mjs calls consoleWalkthrough(kit) with its runner and helpers.
import assert from 'node:assert/strict';
import { cli, safeNavigate, zh as ZH } from './lib.mjs';

const ISSUER = process.env.IDP_ISSUER.replace(/\/$/, '');
const TIMEOUT = 30_000;
const DESKTOP = { width: 1366, height: 900 };
const PHONE = { width: 390, height: 844 };

function digits(n) {
  let s = '';
  for (let i = 0; i < n; i++) s += Math.floor(Math.random() * 10);
  return s;
}

// A resident ID number with a valid check digit (GB 11643), random serial.
function idNumber(birth) {
  const body = `110105${birth}${digits(3)}`;
  const w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  const sum = [...body].reduce((acc, d, i) => acc + Number(d) * w[i], 0);
  return body + '10X98765432'[sum % 11];
}

export async function consoleWalkthrough(kit) {
  const { browser, step, flow, shot, assertFits, watch, captchaAnswer, smsTo, visibleText, setPage } = kit;
  const navigate = safeNavigate(kit.navigate);
  const path = (page) => new URL(page.url()).pathname;
  const tag = Date.now().toString(36).slice(-6);
  const admin = {
    username: `adm_${tag}`, phone: `137${digits(8)}`, password: 'Adm-pass-2024',
    name: '李管理', id: idNumber('19600304'),
  };
  const citizen = { username: `cit_${tag}`, phone: `136${digits(8)}`, password: 'Cit-pass-2024' };
  // The account whose phone an appellant claims (A8).
  const holder = { username: `hld_${tag}`, phone: `135${digits(8)}`, password: 'Hld-pass-2024' };
  const appellant = { name: '王申诉', id: idNumber('19920511') };
  let appealId;
  let clientId;

  // Each console page: axe-core and a screenshot at desktop width, then the
  // same page at phone width (screenshot, axe-core, nothing overflowing).
  const phoneFit = {};
  const photograph = async (page, name) => {
    await shot(page, `console-${name}.png`);
    await page.setViewportSize(PHONE);
    try {
      await shot(page, `console-${name}-phone.png`);
      phoneFit[name] = await assertFits(page, PHONE.width).then(() => null, (e) => e);
    } finally {
      await page.setViewportSize(DESKTOP);
    }
  };
  const fitsPhone = (name) => step(`console ${name}: usable at phone width (nothing overflows)`, async () => {
    assert.ok(name in phoneFit, `${name} was not photographed`);
    if (phoneFit[name]) throw phoneFit[name];
  }, { soft: true });

  await flow('operator console (issue 15): passkey sign-in, apps, plugin scope, suspend/restore, appeal, health-code statistics', async () => {
    await step('CLI: a platform admin (L4 at the counter, no factor yet), a citizen and a phone holder', async () => {
      cli(['user', 'create', '--username', admin.username, '--phone', admin.phone], { IDP_NEW_PASSWORD: admin.password });
      const out = cli(['identity', 'in-person', admin.username, '--name', admin.name, '--number', admin.id,
        '--valid-from', '2020-01-01', '--long-term', '--place', 'e2e counter']);
      assert.match(out, /L[34]/, `in-person verification: ${out}`);
      cli(['staff', 'grant', admin.username, 'platform_admin']);
      cli(['user', 'create', '--username', citizen.username, '--phone', citizen.phone], { IDP_NEW_PASSWORD: citizen.password });
      cli(['user', 'create', '--username', holder.username, '--phone', holder.phone], { IDP_NEW_PASSWORD: holder.password });
    });

    // ---------------------------------------------------------- the appeal
    const cctx = await browser.newContext({ viewport: DESKTOP, locale: 'zh-CN' });
    const cpage = await cctx.newPage();
    watch(cpage, 'console-appellant');
    setPage(cpage);
    await step('a citizen files a phone appeal on /appeal (captcha, SMS code to the claimed phone)', async () => {
      let r = await navigate(cpage, () => cpage.goto(`${ISSUER}/appeal`, { timeout: TIMEOUT }));
      assert.equal(r.status(), 200);
      await cpage.locator('#kind').selectOption('phone');
      await cpage.locator('#claimed_value').fill(holder.phone);
      await cpage.locator('#name').fill(appellant.name);
      await cpage.locator('#id_number').fill(appellant.id);
      await cpage.locator('#details').fill('e2e：这个手机号一直是我本人在用，却被别人注册了。');
      await cpage.locator('#phone').fill(holder.phone);
      const captchaId = await cpage.locator('input[name=captcha_id]').inputValue();
      await cpage.locator('#captcha').fill(captchaAnswer(captchaId));
      r = await navigate(cpage, () => cpage.locator('#sms-send').click());
      assert.equal(r.status(), 200, `sending the code ended with ${r.status()}`);
      const sms = smsTo(holder.phone);
      assert.equal(sms.length, 1, 'one SMS code for the contact phone');
      const code = /(?<!\d)(\d{6})(?!\d)/.exec(sms[0].body)?.[1];
      assert.ok(code, `no code in ${sms[0].body}`);
      await cpage.locator('#sms_code').fill(code);
      r = await navigate(cpage, () => cpage.locator('button[name=action][value=file]').click());
      assert.equal(r.status(), 200, `filing ended with ${r.status()}`);
      appealId = (await cpage.locator('#appeal-id').innerText()).trim();
      assert.match(appealId, /^SS/);
      await shot(cpage, 'console-appeal-filed.png');
    });

    // ---------------------------------------------------------- the admin
    const ctx = await browser.newContext({ viewport: DESKTOP, locale: 'zh-CN' });
    const page = await ctx.newPage();
    watch(page, 'console');
    setPage(page);
    let cdp;
    let authenticatorId;

    await step('the admin enrols a passkey in the personal centre (virtual authenticator, SMS re-verification)', async () => {
      cdp = await ctx.newCDPSession(page);
      await cdp.send('WebAuthn.enable');
      ({ authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
        options: {
          protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true,
          isUserVerified: true, automaticPresenceSimulation: true,
        },
      }));
      let r = await navigate(page, () => page.goto(`${ISSUER}/account/security`, { timeout: TIMEOUT }));
      assert.equal(path(page), '/login', `expected the sign-in page, got ${page.url()}`);
      await page.locator('#username').fill(admin.username);
      await page.locator('#password').fill(admin.password);
      r = await navigate(page, () => page.locator('form[action="/login"] button[type=submit]').click());
      assert.equal(r.status(), 200);
      assert.equal(path(page), '/account/security', `expected the security page, got ${page.url()}`);
      const captchaId = await page.locator('input[name=captcha_id]').inputValue();
      await page.locator('#captcha').fill(captchaAnswer(captchaId));
      r = await navigate(page, () => page.locator('#sms-send').click());
      assert.equal(r.status(), 200);
      const sms = smsTo(admin.phone);
      const code = /(?<!\d)(\d{6})(?!\d)/.exec(sms[0]?.body || '')?.[1];
      assert.ok(code, `no SMS code for the admin: ${JSON.stringify(sms)}`);
      await page.locator('#sms_code').fill(code);
      r = await navigate(page, () => page.locator('button[name=action][value=verify]').click());
      assert.equal(r.status(), 200);
      await page.locator('#passkey-name').fill('console key');
      r = await navigate(page, () => page.locator('[data-webauthn=create] [data-webauthn-start]').click());
      assert.equal(r.status(), 200, `enrolment ended at ${r.url()} with ${r.status()}`);
      await visibleText(page, 'console key');
      const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
      assert.equal(credentials.length, 1, 'one passkey on the authenticator');
    });

    await step('signed out, /admin sends the admin through the provider: the passkey signs in at L3 and the console opens', async () => {
      let r = await navigate(page, () => page.goto(`${ISSUER}/logout`, { timeout: TIMEOUT }));
      r = await navigate(page, () => page.locator('form[action="/logout"] button[type=submit]').click());
      assert.ok(r.status() < 400, `sign-out ended at ${r.url()} with ${r.status()}`);
      // No conditional UI from here on: the admin presses the passkey button.
      await ctx.addInitScript(() => {
        if (window.PublicKeyCredential) PublicKeyCredential.isConditionalMediationAvailable = () => Promise.resolve(false);
      });
      r = await navigate(page, () => page.goto(`${ISSUER}/admin`, { timeout: TIMEOUT }));
      assert.equal(path(page), '/login', `the console asks the provider to sign in, got ${page.url()}`);
      const req = new URL(page.url()).searchParams.get('req');
      assert.ok(req, 'an authorization request of the console client');
      const button = page.locator('form[action="/login/passkey"] [data-webauthn-start]');
      await button.waitFor({ state: 'visible', timeout: TIMEOUT });
      await shot(page, 'console-sign-in.png');
      const arrived = page.waitForURL((u) => ['/admin', '/step-up', '/consent', '/mfa/passkey'].includes(new URL(u).pathname),
        { timeout: TIMEOUT, waitUntil: 'load' });
      await button.click();
      await arrived;
      for (let i = 0; i < 4 && path(page) !== '/admin'; i++) {
        const at = path(page);
        const next = page.waitForURL((u) => new URL(u).pathname !== at, { timeout: TIMEOUT, waitUntil: 'load' });
        if (at === '/step-up') await page.locator('a[href*="/mfa/passkey"]').first().click();
        else if (at === '/mfa/passkey') await page.locator('[data-webauthn-start]').click();
        else if (at === '/consent') await page.locator('button[name=decision][value=allow]').click();
        else assert.fail(`unexpected page on the way to the console: ${page.url()}`);
        await next;
      }
      assert.equal(path(page), '/admin', `expected the console, got ${page.url()}`);
      await page.locator('#admin-nav').waitFor({ state: 'visible' });
      assert.equal(await page.locator('.role[data-role=platform_admin]').count(), 1);
      await photograph(page, 'home');
    });
    await fitsPhone('home');

    await step('apps: "新建应用" creates a confidential app and shows its secret once', async () => {
      let r = await navigate(page, () => page.locator('#admin-nav a[href="/admin/apps"]').click());
      assert.equal(r.status(), 200);
      await photograph(page, 'apps');
      await page.locator('#app-new #name').fill(`E2E 应用 ${tag}`);
      await page.locator('#app-new #redirect_uris').fill('https://app.example.test/callback');
      r = await navigate(page, () => page.locator('#app-new button[type=submit]').click());
      assert.equal(r.status(), 200, `creating the app ended with ${r.status()}`);
      clientId = (await page.locator('#client-id').innerText()).trim();
      assert.ok(clientId, 'the new app has a client id');
      assert.ok((await page.locator('#client-secret').innerText()).trim().length >= 20, 'the secret is shown once');
      await photograph(page, 'app-created');
    });
    await fitsPhone('apps');
    await fitsPhone('app-created');

    await step('apps: the health-code scan scope (a plugin scope) is granted to the new app', async () => {
      const row = page.locator('#plugin-scopes tr[data-scope="health_code.scan"]');
      assert.equal(await row.count(), 1, 'the health-code plugin offers its scan scope');
      assert.equal(await row.getAttribute('data-granted'), null, 'not granted yet');
      const r = await navigate(page, () => row.locator('button[name=action][value=allow_scope]').click());
      assert.equal(r.status(), 200);
      assert.equal(await page.locator('#plugin-scopes tr[data-scope="health_code.scan"]').getAttribute('data-granted'), '1');
      assert.equal((await page.locator('#client-id').innerText()).trim(), clientId);
      await photograph(page, 'app-scope-granted');
    });
    await fitsPhone('app-scope-granted');

    const citizenSignIn = async () => {
      const sctx = await browser.newContext({ viewport: DESKTOP, locale: 'zh-CN' });
      const sp = await sctx.newPage();
      watch(sp, 'console-citizen');
      try {
        await navigate(sp, () => sp.goto(`${ISSUER}/demo`, { timeout: TIMEOUT }));
        assert.equal(path(sp), '/login');
        await sp.locator('#username').fill(citizen.username);
        await sp.locator('#password').fill(citizen.password);
        let r = await navigate(sp, () => sp.locator('form[action="/login"] button[type=submit]').click());
        if (path(sp) === '/consent') r = await navigate(sp, () => sp.locator('button[name=decision][value=allow]').click());
        const error = await sp.locator('main p.error[role=alert]').allInnerTexts();
        return { status: r.status(), at: path(sp), error: error.map((t) => t.trim()).filter(Boolean), page: sp, ctx: sctx };
      } catch (e) {
        await sctx.close();
        throw e;
      }
    };

    await step('people: the citizen found by username, suspended with a reason', async () => {
      let r = await navigate(page, () => page.locator('#admin-nav a[href="/admin/people"]').click());
      assert.equal(r.status(), 200);
      await page.locator('#q').fill(citizen.username);
      r = await navigate(page, () => page.locator('form[action="/admin/people"] button[type=submit]').click());
      assert.equal(r.status(), 200);
      assert.equal(await page.locator('#people tr[data-user]').count(), 1, 'one hit');
      await photograph(page, 'people');
      r = await navigate(page, () => page.locator('#people tr[data-user] a').first().click());
      assert.equal(r.status(), 200);
      assert.equal(await page.locator('#person').getAttribute('data-state'), 'active');
      await photograph(page, 'person');
      await page.locator('#person-actions #reason').fill('e2e: 冒用嫌疑，临时停用');
      r = await navigate(page, () => page.locator('#person-actions button[name=action][value=suspend]').click());
      assert.equal(r.status(), 200, `suspending ended with ${r.status()}`);
      assert.equal(await page.locator('#person').getAttribute('data-state'), 'suspended');
      assert.equal((await page.locator('#done').innerText()).trim(), ZH('admin_done_suspended'));
      await photograph(page, 'person-suspended');
    });
    await fitsPhone('people');
    await fitsPhone('person');
    await fitsPhone('person-suspended');

    await step('the suspended citizen\'s password sign-in is refused with the localized message (login_suspended)', async () => {
      const got = await citizenSignIn();
      try {
        assert.equal(got.status, 401);
        assert.equal(got.at, '/login');
        assert.deepEqual(got.error, [ZH('login_suspended')]);
        await shot(got.page, 'console-citizen-suspended.png');
      } finally {
        await got.ctx.close();
      }
    });

    await step('people: restored, the citizen signs in again', async () => {
      await page.locator('#person-actions #reason').fill('e2e: 核实无误，恢复');
      const r = await navigate(page, () => page.locator('#person-actions button[name=action][value=restore]').click());
      assert.equal(r.status(), 200, `restoring ended with ${r.status()}`);
      assert.equal(await page.locator('#person').getAttribute('data-state'), 'active');
      assert.equal((await page.locator('#done').innerText()).trim(), ZH('admin_done_restored'));
      await photograph(page, 'person-restored');
      const got = await citizenSignIn();
      try {
        assert.deepEqual(got.error, []);
        assert.equal(got.at, '/demo/callback', `expected the demo result, got ${got.page.url()}`);
      } finally {
        await got.ctx.close();
      }
    });
    await fitsPhone('person-restored');

    await step('appeals: the citizen\'s appeal is approved with a reason; the appellant gets the SMS outcome', async () => {
      assert.ok(appealId, 'no appeal was filed');
      let r = await navigate(page, () => page.locator('#admin-nav a[href="/admin/appeals"]').click());
      assert.equal(r.status(), 200);
      const section = page.locator(`section.appeal[data-appeal="${appealId}"]`);
      assert.equal(await section.getAttribute('data-status'), 'pending');
      const heading = await section.locator('h2').innerText();
      assert.ok(heading.includes(ZH('appeal_kind_phone')) && heading.includes(ZH('appeal_status_pending')),
        `kind and state in words, not codes: ${heading}`);
      await photograph(page, 'appeals');
      r = await navigate(page, () => section.locator(`a[href="/admin/appeals/${appealId}"]`).first().click());
      assert.equal(r.status(), 200);
      await photograph(page, 'appeal');
      const before = smsTo(holder.phone).length;
      await page.locator(`#reason-${appealId}`).fill('e2e: 材料齐全，号码归还申诉人');
      r = await navigate(page, () => page.locator('button[name=action][value=approve]').click());
      assert.equal(r.status(), 200, `deciding ended with ${r.status()}`);
      assert.equal(await page.locator(`[data-appeal="${appealId}"]`).count(), 0, 'no longer pending');
      assert.equal((await page.locator('#done').innerText()).trim(), ZH('admin_done_approved'));
      await photograph(page, 'appeal-decided');
      assert.equal(smsTo(holder.phone).length, before + 1, 'the outcome goes to the contact phone by SMS');
    });
    await fitsPhone('appeals');
    await fitsPhone('appeal');
    await fitsPhone('appeal-decided');

    await step('statistics: the platform statistics and the health-code plugin\'s statistics open inside the console', async () => {
      let r = await navigate(page, () => page.locator('#admin-nav a[href="/admin/stats"]').click());
      assert.equal(r.status(), 200);
      assert.ok(await page.locator('svg').count() >= 1, 'charts as SVG');
      await photograph(page, 'stats');
      r = await navigate(page, () => page.locator('#admin-nav a[href="/admin/plugins"]').click());
      assert.equal(r.status(), 200);
      const row = page.locator('#plugins tr[data-plugin=health-code]');
      assert.equal(await row.getAttribute('data-healthy'), 'true');
      const links = await row.locator('a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
      assert.ok(links.length >= 5, `the plugin's admin pages are listed: ${links}`);
      assert.deepEqual(links.filter((h) => h.endsWith('.json')), [], 'pages only, no JSON data routes');
      await photograph(page, 'plugins');
      r = await navigate(page, () => row.locator('a[href="/plugins/health-code/admin/stats"]').click());
      assert.equal(r.status(), 200, `the plugin statistics answered ${r.status()}`);
      assert.equal(path(page), '/plugins/health-code/admin/stats');
      assert.ok(await page.locator('svg.chart').count() >= 4, 'one trend chart and three share rings');
      await photograph(page, 'health-code-stats');
    });
    await fitsPhone('stats');
    await fitsPhone('plugins');
    await fitsPhone('health-code-stats');
    await ctx.close();
    await cctx.close();
  });
}
