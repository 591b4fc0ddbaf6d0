// node:test reporter: one line per check, then "node: N passed, M failed".
const color = process.stdout.isTTY && !process.env.NO_COLOR;
const green = (s) => (color ? `\x1b[32m${s}\x1b[0m` : s);
const red = (s) => (color ? `\x1b[31m${s}\x1b[0m` : s);

function reason(err) {
  let e = err;
  while (e && e.code === 'ERR_TEST_FAILURE' && e.cause) e = e.cause;
  const parts = [];
  for (let depth = 0; e && depth < 4; depth++) {
    if (typeof e !== 'object' || !('message' in e)) {
      parts.push(safe(e));
      break;
    }
    const msg = String(e.message).split('\n').filter(Boolean).slice(0, 4).join(' | ');
    const tags = [];
    if (e.error) tags.push(`error=${e.error}`);
    if (e.error_description) tags.push(`error_description=${e.error_description}`);
    if (e.status) tags.push(`status=${e.status}`);
    if (e.code && !String(e.code).startsWith('ERR_ASSERTION')) tags.push(`code=${e.code}`);
    parts.push(tags.length ? `${msg} [${tags.join(' ')}]` : msg);
    e = e.cause;
  }
  return parts.join(' <- ');
}

function safe(v) {
  try {
    return JSON.stringify(v).slice(0, 300);
  } catch {
    return String(v);
  }
}

export default async function* reporter(source) {
  let passed = 0;
  let failed = 0;
  for await (const ev of source) {
    const d = ev.data ?? {};
    if (ev.type === 'test:pass') {
      if (d.details?.type === 'suite') continue;
      passed++;
      yield `${green('PASS')} [node] ${d.name} (${Math.round(d.details?.duration_ms ?? 0)} ms)\n`;
    } else if (ev.type === 'test:fail') {
      if (d.details?.type === 'suite') {
        yield `     [node] suite "${d.name}" failed: ${reason(d.details?.error)}\n`;
        continue;
      }
      failed++;
      yield `${red('FAIL')} [node] ${d.name}: ${reason(d.details?.error)}\n`;
    } else if (ev.type === 'test:stderr' || ev.type === 'test:stdout') {
      yield `     ${d.message}`;
    }
  }
  yield `node: ${passed} passed, ${failed} failed\n`;
}
