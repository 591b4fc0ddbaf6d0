// Small helpers shared by the browser-test modules (console.mjs, device.mjs).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// The idp CLI on the server's data directory (run.sh exports it).
export function cli(args, env = {}) {
  return execFileSync(process.env.E2E_IDP_BIN, args, {
    env: { ...process.env, IDP_LOG: 'warn', NO_COLOR: '1', ...env },
    encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000,
  });
}

// zh-CN texts by locale key, from the theme's locale file (tests name keys,
// not copy).
const ZH_TEXTS = (() => {
  const file = join(dirname(fileURLToPath(import.meta.url)), '..', 'themes', 'default', 'locales', 'zh-CN.toml');
  const texts = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^([a-z0-9_]+)\s*=\s*"((?:[^"\\]|\\.)*)"\s*$/.exec(line);
    if (m) texts[m[1]] = JSON.parse(`"${m[2]}"`);
  }
  return texts;
})();

export function zh(key) {
  assert.ok(ZH_TEXTS[key], `no zh-CN text for ${key}`);
  return ZH_TEXTS[key];
}

// Wraps e2e.mjs's navigate(page, action): a failing action fails at once,
// and its pending wait for the response is dropped instead of rejecting
// later, unhandled, and ending the whole run.
export function safeNavigate(navigate) {
  return async (page, action) => {
    let failed = null;
    const r = navigate(page, () => action().catch((e) => { failed = e; }));
    r.catch(() => {});
    const over = r.then(() => true, () => true);
    while (!failed && !(await Promise.race([over, new Promise((ok) => setTimeout(() => ok(false), 50))])));
    if (failed) throw failed;
    return r;
  };
}
