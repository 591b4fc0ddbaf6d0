// Real-browser end-to-end test of idp: Debian's Chromium, driven by
// playwright-core, walks the demo relying party through sign-in, self
// registration (graphic captcha + SMS code), consent and back to the demo
// result page, on a PC layout and on a phone (H5) layout, and saves
// screenshots of each page as test artefacts.
//
// Run it through run.sh, which starts the server and sets:
//   IDP_ISSUER      base URL of the running server (http://localhost:PORT)
//   E2E_IDP_BIN     the idp binary (its `dev messages` CLI reads captcha answers and SMS);
//                   not IDP_*: the binary reads every IDP_<KEY> as configuration
//   IDP_DATA_DIR    the server's data directory (shared with the CLI)
//   ARTIFACTS_DIR   where screenshots go
//   CHROMIUM        the browser executable (default /usr/bin/chromium)
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { chromium } from 'playwright-core';
import { consoleWalkthrough } from './console.mjs';
import { deviceGrantFlow } from './device.mjs';

const ISSUER = must('IDP_ISSUER').replace(/\/$/, '');
const BIN = must('E2E_IDP_BIN');
const ARTIFACTS = must('ARTIFACTS_DIR');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
// The reference citizen app, built beside the idp binary (D1 scan-to-login).
const CITIZEN_APP = join(dirname(BIN), 'citizen-app');
const TIMEOUT = 30_000; // argon2 on a debug build is slow: be generous per action
const LAUNCH_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const PC = { viewport: { width: 1280, height: 800 } };
const MOBILE = {
  viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true,
  userAgent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 '
    + '(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1',
};

// axe-core (WCAG 2.1 AA checks), read from node_modules and evaluated in
// each page by the test driver (DevTools evaluation: the pages' CSP, which
// allows no inline script, stays as it is).
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
const axeChecked = []; // page names checked
const axeFindings = []; // serious or critical violations, reported at the end

function must(name) {
  const v = process.env[name];
  if (!v) { console.error(`browser: environment variable ${name} is required (use run.sh)`); process.exit(2); }
  return v;
}

// ------------------------------------------------------------------ runner
let passed = 0;
let failed = 0;
let skipped = 0;
let abortedBy = null; // a failed step skips the rest of its flow (unless soft)
let currentPage = null; // screenshot target when a step fails

// soft: a failure counts but does not skip the rest of the flow (layout checks)
async function step(name, fn, { soft = false } = {}) {
  if (abortedBy) {
    skipped++;
    console.log(`skip  ${name} (after failed step: ${abortedBy})`);
    return;
  }
  const t0 = Date.now();
  try {
    await fn();
    passed++;
    console.log(`ok    ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed++;
    if (!soft) abortedBy = name;
    console.log(`FAIL  ${name} (${Date.now() - t0} ms)`);
    for (const line of String(e?.stack || e).split('\n').slice(0, 12)) console.log(`        ${line}`);
    if (currentPage) {
      console.log(`        at URL: ${currentPage.url()}`);
      const file = `failure-${name.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}.png`;
      await currentPage.screenshot({ path: join(ARTIFACTS, file), fullPage: true }).catch(() => {});
      console.log(`        screenshot: ${file}`);
    }
  }
}

async function flow(name, fn) {
  console.log(`# ${name}`);
  abortedBy = null;
  currentPage = null;
  await fn();
}

// ------------------------------------------------------------------ helpers
// The dev SMS gateway records SMS and captcha answers in the database; the
// CLI reads them while the server runs (newest first).
function devMessages(args) {
  const out = execFileSync(BIN, ['dev', 'messages', ...args, '--json'], {
    env: { ...process.env, IDP_LOG: 'warn', NO_COLOR: '1' },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 20_000,
  });
  const i = out.indexOf('[');
  const j = out.lastIndexOf(']');
  assert.ok(i >= 0 && j > i, `idp dev messages ${args.join(' ')} printed no JSON array: ${out}`);
  return JSON.parse(out.slice(i, j + 1));
}

function captchaAnswer(captchaId) {
  const msgs = devMessages(['--channel', 'captcha', '--to', captchaId]);
  assert.ok(msgs.length >= 1, `no captcha answer recorded for captcha_id ${captchaId}`);
  assert.equal(msgs[0].recipient, captchaId);
  assert.ok(msgs[0].body && msgs[0].body.length >= 3, `implausible captcha answer ${JSON.stringify(msgs[0])}`);
  return msgs[0].body;
}

function smsTo(phone) {
  return devMessages(['--to', phone]);
}

// Runs `action` (a click, a goto) and resolves with the final, non-redirect
// response of the main frame's navigation it triggers.
async function navigate(page, action) {
  const resp = page.waitForEvent('response', {
    predicate: (r) => r.request().isNavigationRequest() && r.frame() === page.mainFrame()
      && !(r.status() >= 300 && r.status() < 400),
    timeout: TIMEOUT,
  });
  await action();
  const r = await resp;
  // the response arrives before the new document commits: wait for it
  await page.waitForURL(r.url(), { waitUntil: 'load', timeout: TIMEOUT });
  return r;
}

function path(page) {
  const u = new URL(page.url());
  return u.pathname;
}

function query(page, key) {
  return new URL(page.url()).searchParams.get(key);
}

async function visibleText(page, text) {
  await page.getByText(text, { exact: false }).first().waitFor({ state: 'visible', timeout: TIMEOUT });
}

// Every page the walkthrough photographs is also checked with axe-core.
async function shot(page, name) {
  await page.screenshot({ path: join(ARTIFACTS, name), fullPage: true });
  await axeCheck(page, name);
}

async function axeCheck(page, name) {
  const found = await page.evaluate(async ({ source, tags }) => {
    if (!window.axe) (0, eval)(source);
    const r = await window.axe.run(document, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] });
    return r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => ({
      id: v.id, impact: v.impact, help: v.help,
      targets: v.nodes.slice(0, 4).map((n) => `${n.target.join(' ')}${n.failureSummary ? ` (${n.failureSummary.split('\n').slice(1, 2).join('').trim()})` : ''}`),
    }));
  }, { source: AXE_SOURCE, tags: AXE_TAGS });
  axeChecked.push(name);
  for (const v of found) axeFindings.push({ page: name, url: page.url(), ...v });
}

// No horizontal scrolling, and every form control lies inside the viewport.
// Measured against the emulated screen width: on a phone, content wider than
// the screen makes Chromium widen the layout viewport (and window.innerWidth)
// and zoom out, so innerWidth alone would hide the overflow.
async function assertFits(page, width) {
  const m = await page.evaluate((vw) => {
    const outside = [...document.querySelectorAll('input:not([type=hidden]), button, img, select, a')]
      .map((el) => ({ el, r: el.getBoundingClientRect() }))
      .filter(({ r }) => r.width > 0 && (r.left < -0.5 || r.right > vw + 0.5))
      .map(({ el, r }) => `${el.tagName.toLowerCase()}#${el.id || el.name || ''} [${Math.round(r.left)}..${Math.round(r.right)}]`);
    return {
      scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth, outside,
      scale: window.visualViewport ? window.visualViewport.scale : 1,
    };
  }, width);
  assert.ok(m.scrollWidth <= width && m.innerWidth <= width,
    `page is wider than the ${width}px screen: scrollWidth ${m.scrollWidth}, innerWidth ${m.innerWidth}`
    + ` (zoomed out to ${m.scale.toFixed(2)}); controls sticking out: ${m.outside.join(', ') || 'none'}`);
  assert.deepEqual(m.outside, [], `controls outside the ${width}px screen`);
}

// Every form control stays inside the card's content box (inside its padding).
async function assertInsideCard(page) {
  const out = await page.evaluate(() => {
    const card = document.querySelector('main.card');
    const cs = getComputedStyle(card);
    const r = card.getBoundingClientRect();
    const left = r.left + parseFloat(cs.paddingLeft) + parseFloat(cs.borderLeftWidth);
    const right = r.right - parseFloat(cs.paddingRight) - parseFloat(cs.borderRightWidth);
    return [...card.querySelectorAll('input:not([type=hidden]), button, img, select')]
      .map((el) => ({ el, b: el.getBoundingClientRect() }))
      .filter(({ b }) => b.width > 0 && (b.left < left - 0.5 || b.right > right + 0.5))
      .map(({ el, b }) => `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''} [${Math.round(b.left)}..${Math.round(b.right)}]`
        + ` outside the card content [${Math.round(left)}..${Math.round(right)}]`);
  });
  assert.deepEqual(out, [], `form controls stick out of the card: ${out.join('; ')}`);
}

// /demo -> /authorize -> /login?req=ID ; returns the req id.
async function openSignIn(page, { lang = 'zh-CN', title = '用户登录' } = {}) {
  const r = await navigate(page, () => page.goto(`${ISSUER}/demo`, { timeout: TIMEOUT }));
  assert.equal(r.status(), 200, `GET /demo ended at ${r.url()} with ${r.status()}`);
  assert.equal(path(page), '/login', `GET /demo should end on /login, got ${page.url()}`);
  const req = query(page, 'req');
  assert.ok(req, `no req parameter in ${page.url()}`);
  assert.equal(await page.locator('html').getAttribute('lang'), lang);
  assert.equal((await page.locator('h1').innerText()).trim(), title);
  return req;
}

function randomDigits(n) {
  let s = '';
  for (let i = 0; i < n; i++) s += Math.floor(Math.random() * 10);
  return s;
}

// The reference citizen app as a subprocess (its own token file).
function citizenEnv() {
  return {
    ...process.env, CITIZEN_APP_ISSUER: ISSUER,
    CITIZEN_APP_STATE: join(process.env.IDP_DATA_DIR || ARTIFACTS, 'citizen-app.json'),
  };
}

function citizenLogin(username, password) {
  return execFileSync(CITIZEN_APP, ['login', '--username', username], {
    env: { ...citizenEnv(), CITIZEN_APP_PASSWORD: password }, encoding: 'utf8', timeout: 60_000,
  });
}

// Starts `citizen-app scan URL` interactively; resolves { output, answer(text), done }.
function citizenScan(url) {
  const child = spawn(CITIZEN_APP, ['scan', url], { env: citizenEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  const done = new Promise((resolve) => child.on('close', (code) => resolve(code)));
  return {
    output: () => output,
    answer: (text) => child.stdin.end(`${text}\n`),
    done,
    kill: () => child.kill(),
  };
}

// ------------------------------------------------------------------ passkeys
// Passkeys with Chromium's virtual authenticator over CDP: a
// platform authenticator that keeps resident (discoverable) keys and
// verifies the user, so the real webauthn.js drives real ceremonies. The
// account registered on PC enrols a passkey in the personal centre (after
// re-verifying by SMS), signs out, and signs in three ways: the conditional
// UI with the account field empty, the button with the field empty
// (usernameless), and the button after naming the account.
async function passkeyFlow() {
  await flow('passkeys (virtual authenticator): enrol on /account/security, then usernameless and username-first sign-in', async () => {
    const ctx = await browser.newContext({ ...PC, locale: 'zh-CN' });
    const page = await ctx.newPage();
    watch(page, 'passkey');
    currentPage = page;
    let cdp;
    let authenticatorId;

    // Signs out through the provider's confirmation page.
    const signOut = async () => {
      let r = await navigate(page, () => page.goto(`${ISSUER}/logout`, { timeout: TIMEOUT }));
      assert.equal(r.status(), 200);
      r = await navigate(page, () => page.locator('form[action="/logout"] button[type=submit]').click());
      assert.ok(r.status() < 400, `sign-out ended at ${r.url()} with ${r.status()}`);
    };
    // The begin request and its options, read as they pass (the page may
    // have navigated away before a response body could be fetched later).
    let begun = null;
    await page.route('**/login/passkey/begin', async (route) => {
      const response = await route.fetch();
      begun = { asked: new URLSearchParams(route.request().postData() || '').get('username'), body: await response.json() };
      await route.fulfill({ response });
    });
    // A passkey sign-in on the page: `action` sets it off (a navigation that
    // lets the conditional UI run, or a click on "使用通行密钥登录"). Waits for
    // the ceremony's begin request and its form POST to /login/passkey, lets
    // the authorization go on (consent may be remembered from the PC flow)
    // and resolves with what was asked, answered and the ID-token claims.
    const passkeySignIn = async (action, shotName) => {
      begun = null;
      const posted = page.waitForRequest((q) => new URL(q.url()).pathname === '/login/passkey' && q.method() === 'POST',
        { timeout: TIMEOUT });
      const arrived = page.waitForURL((u) => ['/consent', '/demo/callback'].includes(new URL(u).pathname),
        { timeout: TIMEOUT, waitUntil: 'load' });
      await action();
      const form = new URLSearchParams((await posted).postData() || '');
      await arrived;
      assert.ok(begun?.body?.options?.publicKey, `no ceremony options seen: ${JSON.stringify(begun)}`);
      if (path(page) === '/consent') {
        const r = await navigate(page, () => page.locator('button[name=decision][value=allow]').click());
        assert.equal(r.status(), 200, `consent ended at ${r.url()} with ${r.status()}`);
      }
      assert.equal(path(page), '/demo/callback', `expected the demo result, got ${page.url()}`);
      await visibleText(page, '登录成功：身份令牌签名与声明已验证。');
      await shot(page, shotName);
      return {
        asked: begun.asked,
        options: begun.body.options.publicKey,
        credential: JSON.parse(form.get('credential') || '{}'),
        claims: JSON.parse(await page.locator('pre#claims').innerText()),
      };
    };
    const passkeyButton = () => page.locator('form[action="/login/passkey"] [data-webauthn-start]');
    const checkSignedIn = ({ claims }) => {
      assert.equal(claims.sub, account.sub, 'the passkey signs in the account that enrolled it');
      assert.ok(claims.amr.includes('swk') && claims.amr.includes('user'), `amr records a user-verified key: ${claims.amr}`);
    };

    await step('Chromium gets a virtual platform authenticator with resident keys and user verification', async () => {
      assert.ok(account.sub, 'no account: the PC registration did not complete');
      assert.ok(new URL(ISSUER).hostname !== '127.0.0.1', `passkeys need a domain name as RP id, the issuer is ${ISSUER}`);
      cdp = await ctx.newCDPSession(page);
      await cdp.send('WebAuthn.enable');
      ({ authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
        options: {
          protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true,
          isUserVerified: true, automaticPresenceSimulation: true,
        },
      }));
      assert.ok(authenticatorId);
    });

    await step('the personal centre asks to sign in, then to re-verify by SMS before factors change (A5)', async () => {
      let r = await navigate(page, () => page.goto(`${ISSUER}/account/security`, { timeout: TIMEOUT }));
      assert.equal(path(page), '/login', `expected the sign-in page, got ${page.url()}`);
      await page.locator('#username').fill(account.username);
      await page.locator('#password').fill(account.password);
      r = await navigate(page, () => page.locator('form[action="/login"] button[type=submit]').click());
      assert.equal(r.status(), 200);
      assert.equal(path(page), '/account/security', `expected the security page, got ${page.url()}`);
      await visibleText(page, '验证身份后管理验证方式');
      assert.equal(await page.locator('[data-webauthn=create]').count(), 0, 'no enrolment before re-verification');
      const captchaId = await page.locator('input[name=captcha_id]').inputValue();
      await page.locator('#captcha').fill(captchaAnswer(captchaId));
      const before = smsTo(account.phone).length;
      r = await navigate(page, () => page.locator('#sms-send').click());
      assert.equal(r.status(), 200);
      const sms = smsTo(account.phone);
      assert.equal(sms.length, before + 1, 'one SMS for the re-verification');
      const m = /(?<!\d)(\d{6})(?!\d)/.exec(sms[0].body);
      assert.ok(m, `no 6-digit code in the SMS body: ${sms[0].body}`);
      await page.locator('#sms_code').fill(m[1]);
      r = await navigate(page, () => page.locator('button[name=action][value=verify]').click());
      assert.equal(r.status(), 200);
      assert.equal(path(page), '/account/security');
      assert.ok(query(page, 'flow'), `re-verification should open a flow: ${page.url()}`);
      await shot(page, 'passkey-security-verified.png');
    });

    await step('"添加通行密钥" runs navigator.credentials.create and lists the new passkey', async () => {
      await page.locator('#passkey-name').fill('e2e virtual key');
      const r = await navigate(page, () => page.locator('[data-webauthn=create] [data-webauthn-start]').click());
      assert.equal(r.status(), 200, `enrolment ended at ${r.url()} with ${r.status()}`);
      assert.equal(path(page), '/account/security');
      // The page comes back at the same URL: wait for the listing (or for
      // the script's error text, should the ceremony fail in place).
      const error = page.locator('[data-webauthn-status]:not(:empty)');
      await Promise.race([visibleText(page, '通行密钥: e2e virtual key'), error.first().waitFor({ state: 'visible' })]);
      const status = await page.locator('[data-webauthn-status]').allInnerTexts();
      assert.deepEqual(status.filter((t) => t.trim()), [], `the page reports a passkey error: ${status}`);
      await visibleText(page, '通行密钥: e2e virtual key');
      const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
      assert.equal(credentials.length, 1, 'one credential on the authenticator');
      assert.equal(credentials[0].isResidentCredential, true, 'the passkey is discoverable (resident key)');
      assert.equal(credentials[0].rpId, new URL(ISSUER).hostname);
      await shot(page, 'passkey-enrolled.png');
    });

    await step('conditional UI: with the account field empty the page offers the passkey and signs in by itself', async () => {
      await signOut();
      // The virtual authenticator answers the waiting (mediation: conditional)
      // request at once, as a person picking the passkey from autofill would.
      const got = await passkeySignIn(async () => {
        // No look at the page here: it may already be moving on.
        const r = await page.goto(`${ISSUER}/demo`, { timeout: TIMEOUT, waitUntil: 'commit' });
        assert.equal(r.status(), 200);
        assert.equal(new URL(r.url()).pathname, '/login', 'signed out: the demo RP must ask to sign in');
      }, 'passkey-conditional-result.png');
      assert.equal(got.asked, '', 'a usernameless ceremony names no account');
      assert.deepEqual(got.options.allowCredentials || [], [], 'any discoverable passkey is allowed');
      assert.ok(got.credential.response?.userHandle, 'a discoverable assertion carries the user handle');
      checkSignedIn(got);
      console.log(`        acr ${got.claims.acr}, amr ${JSON.stringify(got.claims.amr)}`);
    });

    await step('the personal centre is reachable in the passkey session', async () => {
      const r = await navigate(page, () => page.goto(`${ISSUER}/account/security`, { timeout: TIMEOUT }));
      assert.equal(r.status(), 200);
      assert.equal(path(page), '/account/security', `the passkey session should open the personal centre, got ${page.url()}`);
      await visibleText(page, '通行密钥: e2e virtual key');
      await shot(page, 'passkey-personal-centre.png');
    });

    // From here on the browser has no conditional UI (as older ones), so
    // the page waits for the button.
    await ctx.addInitScript(() => {
      if (window.PublicKeyCredential) PublicKeyCredential.isConditionalMediationAvailable = () => Promise.resolve(false);
    });

    await step('usernameless by the button: account field left empty, the authenticator names the account', async () => {
      await signOut();
      await navigate(page, () => page.goto(`${ISSUER}/demo`, { timeout: TIMEOUT }));
      assert.equal(path(page), '/login');
      assert.equal(await page.locator('#username').inputValue(), '', 'the account field is empty');
      assert.equal(await page.locator('#username').getAttribute('autocomplete'), 'username webauthn', 'conditional UI hint');
      await passkeyButton().waitFor({ state: 'visible' });
      await shot(page, 'passkey-login-empty.png');
      const got = await passkeySignIn(() => passkeyButton().click(), 'passkey-usernameless-result.png');
      assert.equal(got.asked, '');
      assert.deepEqual(got.options.allowCredentials || [], []);
      assert.ok(got.credential.response?.userHandle, 'a discoverable assertion carries the user handle');
      checkSignedIn(got);
    });

    await step('username-first: the account named, the ceremony allows only its passkey', async () => {
      await signOut();
      await navigate(page, () => page.goto(`${ISSUER}/demo`, { timeout: TIMEOUT }));
      assert.equal(path(page), '/login');
      await page.locator('#username').fill(account.username);
      const got = await passkeySignIn(() => passkeyButton().click(), 'passkey-username-first-result.png');
      assert.equal(got.asked, account.username);
      assert.equal((got.options.allowCredentials || []).length, 1, 'the named account\'s one passkey is allowed');
      checkSignedIn(got);
      const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
      assert.equal(credentials.length, 1, 'still the one enrolled passkey');
      console.log(`        signature counter ${credentials[0].signCount}`);
    });
    await ctx.close();
  });
}

// ------------------------------------------------------------------ main
const browserErrors = [];
let browser;
const account = {
  username: `e2e_${Date.now().toString(36)}`.slice(0, 20),
  phone: `139${randomDigits(8)}`,
  password: 'E2e-pass-2024',
};

function watch(page, label) {
  page.on('pageerror', (e) => browserErrors.push(`${label}: page error: ${e.message}`));
  // Chromium asks for /favicon.ico on its own; the provider has none (404).
  const noise = (url) => new URL(url).pathname === '/favicon.ico';
  page.on('console', (m) => {
    // "Failed to load resource" repeats a response already judged above
    if (m.type() === 'error' && !noise(m.location()?.url || ISSUER) && !m.text().startsWith('Failed to load resource')) {
      browserErrors.push(`${label}: console error: ${m.text()} (${m.location()?.url})`);
    }
  });
  // 4xx answers to form posts are expected (a wrong captcha is a 400) and the
  // steps check navigations; here: any 5xx, and failing subresources.
  page.on('response', (r) => {
    const nav = r.request().isNavigationRequest();
    if ((r.status() >= 500 || (!nav && r.status() >= 400)) && !noise(r.url())) {
      browserErrors.push(`${label}: ${r.status()} ${r.request().method()} ${r.url()}`);
    }
  });
  page.on('requestfailed', (r) => {
    // The waiting page's event stream is cut by design when the page moves
    // on (the browser aborts an open SSE request at navigation).
    const streamCut = r.url().includes('/scan/events') && r.failure()?.errorText === 'net::ERR_ABORTED';
    if (!noise(r.url()) && !streamCut) browserErrors.push(`${label}: request failed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`);
  });
  if (process.env.E2E_TRACE) { // E2E_TRACE=1: log every request with timings
    const t0 = Date.now();
    page.on('request', (r) => console.log(`        [${label} +${Date.now() - t0}ms] -> ${r.method()} ${r.url().slice(0, 120)}`));
    page.on('response', (r) => console.log(`        [${label} +${Date.now() - t0}ms] <- ${r.status()} ${r.url().slice(0, 120)}`));
    page.on('load', () => console.log(`        [${label} +${Date.now() - t0}ms] load ${page.url().slice(0, 120)}`));
  }
  page.setDefaultTimeout(TIMEOUT);
  page.setDefaultNavigationTimeout(TIMEOUT);
}

async function main() {
  await flow('launch', async () => {
    await step('launch Debian chromium headless', async () => {
      browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: LAUNCH_ARGS, timeout: 60_000 });
      console.log(`        browser ${browser.version()}`);
    });
  });
  if (!browser) return;

  // -------------------------------------------------------------- PC flow
  await flow('PC (1280x800): demo RP -> sign in -> register -> consent -> demo result', async () => {
    const ctx = await browser.newContext({ ...PC, locale: 'zh-CN' });
    const page = await ctx.newPage();
    watch(page, 'pc');
    currentPage = page;
    let req;
    let captchaId;

    await step('GET /demo redirects through /authorize to the sign-in page (zh-CN)', async () => {
      req = await openSignIn(page);
      await visibleText(page, '示例应用 Demo RP'); // "returns to <client>" hint
      for (const link of ['短信验证码登录', '注册新账号', '忘记密码']) {
        await page.getByRole('link', { name: link }).waitFor({ state: 'visible' });
      }
      await page.locator('#username').waitFor({ state: 'visible' });
      await page.locator('#password').waitFor({ state: 'visible' });
      await shot(page, 'pc-login.png');
    });

    await step('"注册新账号" opens the registration form with a rendered captcha', async () => {
      const r = await navigate(page, () => page.getByRole('link', { name: '注册新账号' }).click());
      assert.equal(r.status(), 200);
      assert.equal(path(page), '/register');
      assert.equal(query(page, 'req'), req, 'the registration page must keep the authorization request');
      assert.equal((await page.locator('h1').innerText()).trim(), '用户注册');
      for (const f of ['#username', '#phone', '#captcha', '#sms_code', '#password', '#password2', 'input[name=agree]',
        '#sms-send', 'button[name=action][value=register]']) {
        await page.locator(f).waitFor({ state: 'visible' });
      }
      captchaId = await page.locator('input[name=captcha_id]').inputValue();
      assert.ok(captchaId, 'hidden captcha_id is empty');
      const img = await page.locator('.row img').evaluate((i) => ({ ok: i.complete, w: i.naturalWidth, h: i.naturalHeight }));
      assert.ok(img.ok && img.w > 0 && img.h > 0, `captcha image did not render: ${JSON.stringify(img)}`);
      await shot(page, 'pc-register.png');
    });

    await step('registration form controls stay inside the card', async () => {
      await assertInsideCard(page);
    }, { soft: true });

    await step('a wrong captcha is refused and sends no SMS', async () => {
      await page.locator('#username').fill(account.username);
      await page.locator('#phone').fill(account.phone);
      const answer = captchaAnswer(captchaId);
      const wrong = answer === 'zzzz' ? 'yyyy' : 'zzzz';
      await page.locator('#captcha').fill(wrong);
      const r = await navigate(page, () => page.locator('#sms-send').click());
      assert.equal(path(page), '/register/send', 'the send step has its own route');
      assert.ok(r.status() < 500, `send_code answered ${r.status()}`);
      await visibleText(page, '图形验证码错误或已过期');
      assert.equal(await page.getByText('短信验证码已发送').count(), 0, 'claims an SMS was sent despite a wrong captcha');
      assert.deepEqual(smsTo(account.phone), [], 'an SMS was sent despite a wrong captcha');
      const next = await page.locator('input[name=captcha_id]').inputValue();
      assert.ok(next && next !== captchaId, 'a refused captcha must be replaced by a new one');
      captchaId = next;
    });

    await step('the right captcha sends an SMS code ("短信验证码已发送")', async () => {
      // username and phone are kept on re-render; fill again anyway
      assert.equal(await page.locator('#username').inputValue(), account.username, 'username not kept on re-render');
      assert.equal(await page.locator('#phone').inputValue(), account.phone, 'phone not kept on re-render');
      await page.locator('#captcha').fill(captchaAnswer(captchaId));
      const r = await navigate(page, () => page.locator('#sms-send').click());
      assert.equal(r.status(), 200);
      assert.equal(path(page), '/register/send', 'the send step has its own route');
      await visibleText(page, '短信验证码已发送');
      assert.equal(await page.locator('#username').inputValue(), account.username, 'username not kept after send_code');
      assert.equal(await page.locator('#phone').inputValue(), account.phone, 'phone not kept after send_code');
      const next = await page.locator('input[name=captcha_id]').inputValue();
      assert.ok(next && next !== captchaId, 'captcha must be single use: the page should show a new one');
      const sms = smsTo(account.phone);
      assert.equal(sms.length, 1, `expected exactly one SMS to ${account.phone}, got ${sms.length}`);
      assert.equal(sms[0].recipient, account.phone);
      const m = /(?<!\d)(\d{6})(?!\d)/.exec(sms[0].body);
      assert.ok(m, `no 6-digit code in the SMS body: ${sms[0].body}`);
      account.smsCode = m[1];
      await shot(page, 'pc-register-code-sent.png');
    });

    await step('registering signs the new user in and offers the real-name step (A1)', async () => {
      await page.locator('#sms_code').fill(account.smsCode);
      await page.locator('#password').fill(account.password);
      await page.locator('#password2').fill(account.password);
      await page.locator('input[name=agree]').check();
      const r = await navigate(page, () => page.locator('button[name=action][value=register]').click());
      assert.equal(r.status(), 200, `register ended at ${r.url()} with ${r.status()}`);
      assert.equal(path(page), '/register/real-name', `expected the real-name offer, got ${page.url()}`);
      assert.equal((await page.locator('#skip').innerText()).trim(), '暂不认证');
      await shot(page, 'pc-real-name-offer.png');
    });

    await step('"not now" continues to the consent page', async () => {
      const r = await navigate(page, () => page.locator('#skip').click());
      assert.equal(r.status(), 200, `skip ended at ${r.url()} with ${r.status()}`);
      assert.equal(path(page), '/consent', `expected the consent page after skipping, got ${page.url()}`);
      assert.equal(query(page, 'req'), req, 'consent must continue the same authorization request');
      assert.equal((await page.locator('h1').innerText()).trim(), '授权确认');
      await visibleText(page, account.username); // "当前登录账号：<username>"
      await page.locator('button[name=decision][value=allow]').waitFor({ state: 'visible' });
      assert.equal((await page.locator('button[name=decision][value=allow]').innerText()).trim(), '同意授权并登录');
      await shot(page, 'pc-consent.png');
    });

    await step('allowing returns to the demo RP with verified ID-token claims', async () => {
      const r = await navigate(page, () => page.locator('button[name=decision][value=allow]').click());
      assert.equal(r.status(), 200, `callback ended at ${r.url()} with ${r.status()}`);
      assert.equal(path(page), '/demo/callback');
      if (await page.locator('p.error').count() > 0) {
        assert.fail(`demo RP reports an error: ${await page.locator('p.error').first().innerText()}`);
      }
      assert.equal((await page.locator('h1').innerText()).trim(), '示例应用');
      await visibleText(page, '登录成功：身份令牌签名与声明已验证。');
      const claimsText = await page.locator('pre#claims').innerText();
      const userinfoText = await page.locator('pre#userinfo').innerText();
      const claims = JSON.parse(claimsText);
      const userinfo = JSON.parse(userinfoText);
      assert.equal(claims.iss, ISSUER, 'iss');
      assert.ok(claims.sub && typeof claims.sub === 'string', 'sub');
      assert.equal(claims.acr, 'urn:idp:loa:1', 'acr');
      assert.ok([claims.aud].flat().includes('demo-rp'), `aud ${JSON.stringify(claims.aud)}`);
      assert.equal(userinfo.sub, claims.sub, 'userinfo sub must equal the ID token sub');
      assert.equal(userinfo.preferred_username, account.username, 'userinfo preferred_username');
      account.sub = claims.sub;
      await shot(page, 'pc-result.png');
    });
    await ctx.close();
  });

  // -------------------------------------------------------------- mobile flow
  await flow('mobile/H5 (390x844, touch): sign-in and registration fit; new account signs in', async () => {
    const ctx = await browser.newContext({ ...MOBILE, locale: 'zh-CN' });
    const page = await ctx.newPage();
    watch(page, 'mobile');
    currentPage = page;

    await step('sign-in page opens on the phone and fits the screen', async () => {
      await openSignIn(page);
      await shot(page, 'mobile-login.png');
      await assertFits(page, MOBILE.viewport.width);
      await assertInsideCard(page);
    });

    await step('registration page opens on the phone (tap "注册新账号")', async () => {
      const r = await navigate(page, () => page.getByRole('link', { name: '注册新账号' }).tap());
      assert.equal(r.status(), 200);
      assert.equal(path(page), '/register');
      assert.equal((await page.locator('h1').innerText()).trim(), '用户注册');
      const img = await page.locator('.row img').evaluate((i) => ({ ok: i.complete, w: i.naturalWidth }));
      assert.ok(img.ok && img.w > 0, 'captcha image did not render');
      await shot(page, 'mobile-register.png');
    });

    await step('registration page fits the phone screen (no horizontal scroll)', async () => {
      await assertFits(page, MOBILE.viewport.width);
      await assertInsideCard(page);
    }, { soft: true });

    await step('the account registered on PC signs in with its password and reaches the demo result', async () => {
      assert.ok(account.sub, 'no account: the PC registration did not complete');
      await navigate(page, () => page.getByRole('link', { name: '已有账号？去登录' }).tap());
      assert.equal(path(page), '/login');
      await page.locator('#username').fill(account.username);
      await page.locator('#password').fill(account.password);
      let r = await navigate(page, () => page.locator('form button[type=submit]').tap());
      if (path(page) === '/consent') { // consent may or may not be remembered
        r = await navigate(page, () => page.locator('button[name=decision][value=allow]').tap());
      }
      assert.equal(r.status(), 200);
      assert.equal(path(page), '/demo/callback', `expected the demo result, got ${page.url()}`);
      await visibleText(page, '登录成功：身份令牌签名与声明已验证。');
      const claims = JSON.parse(await page.locator('pre#claims').innerText());
      assert.equal(claims.sub, account.sub, 'same account, same sub');
      assert.equal(claims.acr, 'urn:idp:loa:1');
      await shot(page, 'mobile-result.png');
    });

    await step('demo result page fits the phone screen', async () => {
      await assertFits(page, MOBILE.viewport.width);
    }, { soft: true });
    await ctx.close();
  });

  // -------------------------------------------------------------- scan-to-login
  await flow('scan-to-login (D1): QR on the PC page, the citizen app confirms, the page proceeds by itself', async () => {
    const ctx = await browser.newContext({ ...PC, locale: 'zh-CN' });
    const page = await ctx.newPage();
    watch(page, 'scan');
    currentPage = page;
    let qrUrl;
    let scan;

    await step('the sign-in page has a "扫码登录" tab showing a QR code and its URL as text', async () => {
      assert.ok(account.sub, 'no account: the PC registration did not complete');
      const req = await openSignIn(page);
      const r = await navigate(page, () => page.getByRole('link', { name: '扫码登录' }).click());
      assert.equal(r.status(), 200);
      assert.equal(path(page), '/login/scan');
      assert.equal(query(page, 'req'), req, 'the scan tab keeps the authorization request');
      const svg = page.locator('#scan .qr svg');
      await svg.waitFor({ state: 'visible' });
      const box = await svg.boundingBox();
      assert.ok(box && box.width >= 150 && box.height >= 150, `QR too small: ${JSON.stringify(box)}`);
      const ticket = await page.locator('#scan').getAttribute('data-ticket');
      qrUrl = `${ISSUER}/scan/t/${ticket}`;
      assert.equal((await page.locator('.scan-url code').textContent()).trim(), qrUrl);
      await visibleText(page, '请使用 App 扫一扫');
      assert.ok(!(await page.locator('#scan-app-link').isVisible()), 'a PC shows the QR, not the app link');
      await shot(page, 'pc-scan-qr.png');
    });

    await step('the citizen app signs in (code + PKCE, scan_login scope)', async () => {
      const out = citizenLogin(account.username, account.password);
      assert.match(out, /signed in as/);
    });

    await step('the app reads the code: it shows the demo RP and the browser address; the page says "已扫码"', async () => {
      scan = citizenScan(qrUrl);
      await page.getByText('已扫码，请在手机上确认').waitFor({ state: 'visible', timeout: TIMEOUT });
      assert.match(scan.output(), /示例应用 Demo RP/, `the app must show the requesting site: ${scan.output()}`);
      assert.match(scan.output(), /127\.0\.0\.1/);
      assert.match(scan.output(), /Confirm\?/);
      await shot(page, 'pc-scan-scanned.png');
    });

    await step('confirming in the app: the page proceeds by itself to the demo RP, signed in as the app user', async () => {
      const arrived = page.waitForURL((u) => new URL(u).pathname === '/demo/callback', { timeout: TIMEOUT });
      scan.answer('y');
      assert.equal(await scan.done, 0, `citizen-app failed: ${scan.output()}`);
      await arrived;
      await page.waitForLoadState('load');
      await visibleText(page, '登录成功：身份令牌签名与声明已验证。');
      const claims = JSON.parse(await page.locator('pre#claims').innerText());
      assert.equal(claims.sub, account.sub, 'the browser is signed in as the app user');
      assert.deepEqual(claims.amr, ['mca', 'swk'], 'amr records scan sign-in (multiple-channel)');
      await shot(page, 'pc-scan-result.png');
    });
    if (scan) scan.kill();
    await ctx.close();
  });

  await flow('scan-to-login on the phone layout', async () => {
    const ctx = await browser.newContext({ ...MOBILE, locale: 'zh-CN' });
    const page = await ctx.newPage();
    watch(page, 'scan-mobile');
    currentPage = page;
    await step('the scan tab fits the phone screen', async () => {
      await openSignIn(page);
      await navigate(page, () => page.getByRole('link', { name: '扫码登录' }).tap());
      await page.locator('#scan .qr svg').waitFor({ state: 'visible' });
      assert.ok(await page.locator('#scan-app-link a').isVisible(), 'a phone offers "在 App 中打开"');
      await shot(page, 'mobile-scan-qr.png');
      await assertFits(page, MOBILE.viewport.width);
      await assertInsideCard(page);
    }, { soft: true });
    await ctx.close();
  });

  // -------------------------------------------------------------- English
  await flow('English (Accept-Language: en)', async () => {
    const ctx = await browser.newContext({ ...PC, locale: 'en-US' });
    const page = await ctx.newPage();
    watch(page, 'en');
    currentPage = page;
    await step('sign-in page is English for an English browser', async () => {
      await openSignIn(page, { lang: 'en', title: 'Sign in' });
      await shot(page, 'pc-login-en.png');
    });
    await ctx.close();
  });

  // -------------------------------------------------------------- Tibetan
  await flow('Tibetan (bo): bilingual pages, Tibetan with the Chinese beside it, on a PC and a phone', async () => {
    for (const [label, device] of [['pc', PC], ['mobile', MOBILE]]) {
      const ctx = await browser.newContext({ ...device, locale: 'bo' });
      const page = await ctx.newPage();
      watch(page, `bo-${label}`);
      currentPage = page;
      await step(`${label}: the sign-in page is in Tibetan and Chinese for a Tibetan browser`, async () => {
        await navigate(page, () => page.goto(`${ISSUER}/demo`, { timeout: TIMEOUT }));
        assert.equal(path(page), '/login', `GET /demo should end on /login, got ${page.url()}`);
        assert.equal(await page.locator('html').getAttribute('lang'), 'bo');
        assert.equal(await page.locator('h1 > .bi > [lang=bo]').count(), 1, 'the heading in Tibetan');
        assert.equal((await page.locator('h1 > .bi > [lang=zh-CN]').innerText()).trim(), '用户登录', 'and in Chinese');
        assert.equal(await page.locator('#lang-zh').innerText(), '中文');
        await shot(page, `${label}-login-bo.png`);
        if (label === 'mobile') await assertFits(page, MOBILE.viewport.width);
      });
      await step(`${label}: the registration page in Tibetan and Chinese`, async () => {
        const r = await navigate(page, () => page.locator('a[href^="/register"]').first().click());
        assert.equal(r.status(), 200);
        assert.equal(path(page), '/register');
        assert.ok(await page.locator('label [lang=bo]').count() >= 3, 'labels in Tibetan');
        await shot(page, `${label}-register-bo.png`);
        if (label === 'mobile') await assertFits(page, MOBILE.viewport.width);
      });
      await ctx.close();
    }
  });

  // -------------------------------------------------------------- keyboard only
  await flow('keyboard only: password sign-in with Tab, typing and Enter (no pointer)', async () => {
    const ctx = await browser.newContext({ ...PC, locale: 'zh-CN' });
    const page = await ctx.newPage();
    watch(page, 'keyboard');
    currentPage = page;
    const active = () => page.evaluate(() => {
      const a = document.activeElement;
      return a ? (a.id || `${a.tagName.toLowerCase()}${a.name ? `[name=${a.name}]` : ''}${a.value ? `[value=${a.value}]` : ''}`) : '';
    });
    await step('from the top of the page, Tab passes the skip link and the menu and reaches the account field', async () => {
      assert.ok(account.sub, 'no account: the PC registration did not complete');
      await openSignIn(page);
      // Start where a keyboard user starts on a page without autofocus: the
      // top of the document (blur alone keeps the field as the starting point).
      await page.evaluate(() => {
        const root = document.documentElement;
        root.tabIndex = -1;
        root.focus();
        root.removeAttribute('tabindex');
      });
      const order = [];
      for (let i = 0; i < 40 && order.at(-1) !== 'username'; i++) {
        await page.keyboard.press('Tab');
        order.push(await active());
      }
      assert.equal(order.at(-1), 'username', `Tab never reached the account field: ${order.join(' → ')}`);
      assert.equal(order[0], 'frame-skip', `the skip link comes first: ${order.join(' → ')}`);
      const ring = await page.locator('#username').evaluate((el) => getComputedStyle(el).outlineStyle);
      assert.notEqual(ring, 'none', 'the focused field shows a focus ring');
    });
    await step('typing, Tab to the password, Enter: signed in and back at the demo app', async () => {
      await page.keyboard.type(account.username);
      await page.keyboard.press('Tab');
      assert.equal(await active(), 'password');
      await page.keyboard.type(account.password);
      let r = await navigate(page, () => page.keyboard.press('Enter'));
      if (path(page) === '/consent') {
        for (let i = 0; i < 30 && (await active()) !== 'button[name=decision][value=allow]'; i++) {
          await page.keyboard.press('Tab');
        }
        assert.equal(await active(), 'button[name=decision][value=allow]', 'Tab reaches "allow"');
        r = await navigate(page, () => page.keyboard.press('Enter'));
      }
      assert.equal(r.status(), 200);
      assert.equal(path(page), '/demo/callback', `expected the demo result, got ${page.url()}`);
      const claims = JSON.parse(await page.locator('pre#claims').innerText());
      assert.equal(claims.sub, account.sub, 'the same account');
      await shot(page, 'keyboard-result.png');
    });
    await ctx.close();
  });

  // -------------------------------------------------------------- health-code plugin
  if (process.env.E2E_HC_USER) {
    await flow('health-code plugin (E1, E5): the personal code page and the statistics page', async () => {
      const ctx = await browser.newContext({ ...MOBILE, locale: 'zh-CN' });
      const page = await ctx.newPage();
      watch(page, 'health-code');
      currentPage = page;
      await step('the personal code page signs in first, then shows the colour, masked name, time and QR', async () => {
        await navigate(page, () => page.goto(`${ISSUER}/plugins/health-code/`, { timeout: TIMEOUT }));
        assert.equal(path(page), '/login', `expected the sign-in page, got ${page.url()}`);
        await page.locator('#username').fill(process.env.E2E_HC_USER);
        await page.locator('#password').fill(process.env.E2E_HC_PASSWORD);
        const r = await navigate(page, () => page.locator('form button[type=submit]').tap());
        assert.equal(r.status(), 200);
        assert.equal(path(page), '/plugins/health-code/', `expected the code page, got ${page.url()}`);
        await visibleText(page, '绿码');
        await visibleText(page, '张*');
        assert.equal(await page.locator('section.health-code[data-colour=green] .qr svg').count(), 1);
        // It reloads itself before the code expires, with a pause the citizen
        // controls (WCAG 2.2.1), never a meta refresh.
        assert.equal(await page.locator('meta[http-equiv=refresh]').count(), 0, 'no meta refresh');
        const toggle = page.locator('#auto-reload-toggle');
        await toggle.waitFor({ state: 'visible', timeout: TIMEOUT });
        await toggle.tap();
        assert.equal(await page.locator('#auto-reload').getAttribute('data-state'), 'paused');
        await visibleText(page, '继续自动刷新');
        await shot(page, 'health-code-personal.png');
      });
      await step('the personal code page fits the phone screen', async () => {
        await assertFits(page, MOBILE.viewport.width);
      }, { soft: true });
      await step('the offline code page shows the PNG with its generation time', async () => {
        const r = await navigate(page, () => page.getByRole('link', { name: '离线码' }).tap());
        assert.equal(r.status(), 200);
        assert.equal(path(page), '/plugins/health-code/offline');
        const width = await page.locator('img.offline').evaluate((img) => img.naturalWidth);
        assert.ok(width > 100, `the PNG did not load (naturalWidth ${width})`);
        await visibleText(page, '生成时间');
        await shot(page, 'health-code-offline.png');
      });
      await ctx.close();

      const admin = await browser.newContext({
        ...PC, locale: 'zh-CN',
        extraHTTPHeaders: { Authorization: `Bearer ${process.env.E2E_PLUGIN_ADMIN_TOKEN}` },
      });
      const ap = await admin.newPage();
      watch(ap, 'health-code-admin');
      currentPage = ap;
      await step('the statistics page draws the daily trend and the shares by type as SVG charts', async () => {
        const r = await navigate(ap, () => ap.goto(`${ISSUER}/plugins/health-code/admin/stats`, { timeout: TIMEOUT }));
        assert.equal(r.status(), 200);
        await visibleText(ap, '每日趋势');
        assert.ok(await ap.locator('svg.chart').count() >= 4, 'one trend chart and three share rings');
        assert.equal(await ap.locator('p.total[data-metric=shown] strong').innerText(), '1', 'the one show above');
        await shot(ap, 'health-code-stats.png');
      });
      await admin.close();
    });
  }

  await passkeyFlow();
  await consoleWalkthrough({ browser, step, flow, shot, assertFits, navigate, watch, captchaAnswer, smsTo, visibleText, setPage: (p) => { currentPage = p; } });
  await deviceGrantFlow({ browser, step, flow, shot, assertFits, navigate, watch, setPage: (p) => { currentPage = p; } });

  // -------------------------------------------------------------- accessibility
  await flow('accessibility: axe-core (WCAG 2.1 A/AA) on every page above', async () => {
    await step('no serious or critical violation on any page the walkthrough visited', async () => {
      assert.ok(axeChecked.length >= 10, `only ${axeChecked.length} pages were checked`);
      console.log(`        axe-core checked ${axeChecked.length} pages`);
      const lines = axeFindings.map((f) => `${f.page} (${f.url}): [${f.impact}] ${f.id}: ${f.help}\n            ${f.targets.join('\n            ')}`);
      assert.deepEqual(lines, [], `axe-core found:\n${lines.join('\n')}`);
    });
  });

  await flow('browser health', async () => {
    await step('no page errors, console errors or 5xx responses', async () => {
      assert.deepEqual(browserErrors, []);
    });
  });
}

mkdirSync(ARTIFACTS, { recursive: true });
try {
  await main();
} catch (e) {
  failed++;
  console.log(`FAIL  ${e?.stack || e}`);
} finally {
  if (browser) await browser.close().catch(() => {});
}

console.log(`screenshots in ${ARTIFACTS}`);
console.log(`browser: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
