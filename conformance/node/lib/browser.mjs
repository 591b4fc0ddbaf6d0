// A minimal scripted "browser": cookie jar + manual redirect handling + the
// idp login / consent / select-account forms. It never follows a redirect that
// leaves the issuer's origin (the client's redirect_uri on 127.0.0.1:9 is not
// listening); such a redirect ends the drive and is returned to the caller.

const REDIRECT = new Set([301, 302, 303, 307, 308]);

export function htmlUnescape(s) {
  return s
    .replace(/&quot;/g, '"')
    .replace(/&#x27;|&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&#x2F;|&#47;/g, '/')
    .replace(/&#x3D;|&#61;/g, '=')
    .replace(/&amp;/g, '&');
}

/** Value of hidden input `name` (attributes appear as name="X" value="Y"). */
export function hiddenInput(html, name) {
  const re = new RegExp(`name="${name}"\\s+value="([^"]*)"`);
  const m = html.match(re);
  return m ? htmlUnescape(m[1]) : undefined;
}

/** The full <input ...> tag whose name attribute is `name`. */
export function inputTag(html, name) {
  const re = new RegExp(`<input\\b[^>]*\\bname="${name}"[^>]*>`, 'i');
  const m = html.match(re);
  return m ? m[0] : undefined;
}

export function attr(tag, name) {
  const m = tag?.match(new RegExp(`\\b${name}="([^"]*)"`));
  return m ? htmlUnescape(m[1]) : undefined;
}

export function formAction(html) {
  const m = html.match(/<form\b[^>]*\baction="([^"]*)"/i);
  return m ? htmlUnescape(m[1]) : undefined;
}

/** Which idp interaction page this is: 'login' | 'consent' | 'select-account' | undefined. */
export function pageKind(html, url) {
  const action = formAction(html);
  const path = action ? new URL(action, url).pathname : '';
  for (const k of ['login', 'consent', 'select-account']) {
    if (path === `/${k}`) return k;
  }
  return undefined;
}

export class Browser {
  constructor(issuer) {
    this.origin = new URL(issuer).origin;
    this.cookies = new Map(); // name -> {value, path}
  }

  cookieHeader(url) {
    const path = new URL(url).pathname;
    const parts = [];
    for (const [name, c] of this.cookies) {
      if (path === c.path || path.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`) || c.path === '/') {
        parts.push(`${name}=${c.value}`);
      }
    }
    return parts.join('; ');
  }

  storeCookies(res) {
    const list = typeof res.headers.getSetCookie === 'function' ? res.headers.getSetCookie() : [];
    for (const sc of list) {
      const [pair, ...attrs] = sc.split(';');
      const eq = pair.indexOf('=');
      if (eq < 1) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let path = '/';
      let expired = false;
      for (const a of attrs) {
        const [k, v = ''] = a.split('=');
        const key = k.trim().toLowerCase();
        if (key === 'path' && v.trim()) path = v.trim();
        if (key === 'max-age' && Number(v) <= 0) expired = true;
        if (key === 'expires' && Date.parse(v) < Date.now()) expired = true;
      }
      if (expired || value === '') this.cookies.delete(name);
      else this.cookies.set(name, { value, path });
    }
  }

  /** One HTTP request, no redirect following. Returns {status, location, html, url, headers}. */
  async request(url, { method = 'GET', form } = {}) {
    url = new URL(url).href;
    const headers = { accept: 'text/html,application/xhtml+xml,*/*' };
    const ck = this.cookieHeader(url);
    if (ck) headers.cookie = ck;
    let body;
    if (form) {
      body = new URLSearchParams(form).toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    }
    const res = await fetch(url, { method, headers, body, redirect: 'manual' });
    this.storeCookies(res);
    const text = await res.text();
    const loc = res.headers.get('location');
    return {
      status: res.status,
      location: loc ? new URL(loc, url).href : undefined,
      html: text,
      url,
      headers: res.headers,
    };
  }

  /**
   * Play the user agent from `start` (a URL, or {url, method:'POST', form})
   * until a redirect leaves the issuer origin or a page we do not handle is shown.
   *
   * opts: user {username,password}; consent 'allow'|'deny'; account 'continue'|'switch';
   *       stopAt: page kind at which to stop and return without submitting.
   * Returns {callback: URL|undefined, pages: [...kinds], last: response, trace: [...]}
   */
  async drive(start, opts = {}) {
    const { user, consent = 'allow', account = 'continue', stopAt } = opts;
    const pages = [];
    const trace = [];
    let res =
      typeof start === 'object' && !(start instanceof URL)
        ? await this.request(start.url, { method: start.method ?? 'GET', form: start.form })
        : await this.request(start);
    let loginSubmits = 0;
    for (let hop = 0; hop < 20; hop++) {
      trace.push(`${res.status} ${new URL(res.url).pathname}${res.location ? ` -> ${res.location}` : ''}`);
      if (REDIRECT.has(res.status) && res.location) {
        if (new URL(res.location).origin !== this.origin) {
          return { callback: new URL(res.location), pages, last: res, trace };
        }
        res = await this.request(res.location);
        continue;
      }
      const kind = res.status === 200 || res.status === 401 ? pageKind(res.html, res.url) : undefined;
      if (!kind || kind === stopAt) return { callback: undefined, pages, last: res, trace, stoppedAt: kind };
      pages.push(kind);
      const action = new URL(formAction(res.html), res.url).href;
      const req = hiddenInput(res.html, 'req');
      const csrf = hiddenInput(res.html, 'csrf');
      if (kind === 'login') {
        if (!user || loginSubmits >= 1) return { callback: undefined, pages, last: res, trace, stoppedAt: kind };
        loginSubmits++;
        res = await this.request(action, {
          method: 'POST',
          form: { req, csrf, username: user.username, password: user.password },
        });
      } else if (kind === 'consent') {
        res = await this.request(action, { method: 'POST', form: { req, csrf, decision: consent } });
      } else {
        res = await this.request(action, { method: 'POST', form: { req, csrf, choice: account } });
      }
    }
    throw new Error(`too many hops: ${trace.join(' | ')}`);
  }
}
