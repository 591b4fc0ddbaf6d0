// Legal persons (C1, C4): an approved agent signs in for an enterprise —
// credit code, "I am an agent", his own account — passes the first-sign-in
// face gate through the reference citizen app (scan + the verifier's face
// check), and openid-client validates the delegated ID token: `sub` is the
// enterprise, `act.sub` the acting person (RFC 8693 §4.1), and the
// `legal_person` scope's claims name the enterprise. Set up by run.sh through
// the CLI (enterprise create, enterprise add-agent --approved).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { oidc, ISSUER, CONF, configFor, newBrowser, authRequest, check, snippet } from '../lib/rp.mjs';
import { hiddenInput, htmlUnescape } from '../lib/browser.mjs';

const L = CONF.legal;

function dataAttr(html, name) {
  const m = html.match(new RegExp(`${name}="([^"]*)"`));
  return m ? htmlUnescape(m[1]) : undefined;
}

/** The reference app scans the QR URL, runs the face check and confirms. */
function citizenScan(url) {
  const app = L.citizen_app;
  return execFileSync(
    app.bin,
    ['--issuer', ISSUER, `--client-id=${app.client_id}`, '--state', app.state, 'scan', url, '--yes', '--face', app.photo],
    { encoding: 'utf8', timeout: 60_000 },
  );
}

check('delegated ID token: an agent signs in for an enterprise; sub = enterprise, act.sub = agent, legal_person claims', async () => {
  const config = await configFor('basic');
  const b = newBrowser();
  const req = await authRequest(config, { scope: 'openid legal_person' });
  const first = await b.request(req.url);
  assert.equal(first.status, 303, `authorize redirects to sign-in: ${first.status}`);
  const reqId = new URL(first.location).searchParams.get('req');
  assert.ok(reqId, `a pending request id in ${first.location}`);
  const form = await b.request(`${ISSUER}/login/enterprise?req=${encodeURIComponent(reqId)}`);
  assert.equal(form.status, 200);
  const posted = await b.request(`${ISSUER}/login/enterprise`, {
    method: 'POST',
    form: {
      req: reqId, csrf: hiddenInput(form.html, 'csrf'), uscc: L.enterprise.uscc, role: 'agent',
      agent: L.agent.login, password: L.agent.password,
    },
  });
  assert.equal(posted.status, 303, `sign-in accepted: ${snippet(posted.html)}`);
  assert.match(posted.location, /\/face\?gate=/, 'the first sign-in waits for a face check through the app');
  const gate = await b.request(posted.location);
  const ticket = dataAttr(gate.html, 'data-ticket');
  assert.ok(ticket, `the gate page shows a scan ticket: ${snippet(gate.html)}`);
  const out = citizenScan(`${ISSUER}/scan/t/${ticket}`);
  assert.match(out, /first sign-in for 示例科技有限公司/, out);
  const done = await b.request(`${ISSUER}/scan/complete`, {
    method: 'POST', form: { t: ticket, csrf: hiddenInput(gate.html, 'csrf') },
  });
  assert.equal(done.status, 303, `the confirmed ticket continues the sign-in: ${snippet(done.html)}`);
  const r = await b.drive(done.location, { consent: 'allow' });
  assert.ok(r.callback, `back at the client; trace: ${r.trace.join(' | ')}`);
  const tokens = await oidc.authorizationCodeGrant(config, r.callback, {
    pkceCodeVerifier: req.verifier, expectedState: req.state, expectedNonce: req.nonce,
  });
  const c = tokens.claims();
  assert.equal(c.sub, L.enterprise.id, 'sub is the enterprise');
  assert.deepEqual(c.act, { sub: L.agent.sub }, 'act names the acting person (RFC 8693)');
  assert.equal(c.legal_person?.uscc, L.enterprise.uscc);
  assert.equal(c.legal_person?.name, L.enterprise.name);
  assert.equal(c.legal_person?.role, 'agent');
  assert.equal(c.name, undefined, "the agent's own profile is not released under the enterprise");
  const ui = await oidc.fetchUserInfo(config, tokens.access_token, c.sub); // library checks sub
  assert.equal(ui.act?.sub, L.agent.sub);
  assert.equal(ui.legal_person?.uscc, L.enterprise.uscc);
});
