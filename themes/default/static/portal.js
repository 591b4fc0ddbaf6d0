// Small page helpers of the portal (same-origin file: the CSP allows no
// inline script): copy a value to the clipboard, print the page.
(function () {
  'use strict';
  document.addEventListener('click', function (ev) {
    var el = ev.target.closest ? ev.target.closest('[data-copy],[data-print]') : null;
    if (!el) { return; }
    if (el.hasAttribute('data-print')) { window.print(); return; }
    var text = el.getAttribute('data-copy');
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(function () {
        var was = el.textContent;
        el.textContent = el.getAttribute('data-copied') || was;
        setTimeout(function () { el.textContent = was; }, 2000);
      });
    }
  });
})();

// Forms with an SMS code: the "获取短信验证码" button counts down after a
// send (data-wait seconds from the server), and "换一张" fetches a fresh
// graphic captcha without losing what was typed.
(function () {
  'use strict';
  function countdown(btn) {
    var left = parseInt(btn.getAttribute('data-wait') || '0', 10);
    if (!(left > 0)) { return; }
    var label = btn.textContent;
    var pattern = btn.getAttribute('data-wait-text') || '{seconds}';
    btn.disabled = true;
    var tick = function () {
      if (left <= 0) { btn.disabled = false; btn.textContent = label; return; }
      btn.textContent = pattern.replace('{seconds}', String(left));
      left -= 1;
      setTimeout(tick, 1000);
    };
    tick();
  }
  function refresh(link) {
    var form = link.closest('form');
    var img = form ? form.querySelector('#captcha-image') : document.getElementById('captcha-image');
    var id = form ? form.querySelector('input[name="captcha_id"]') : null;
    if (!img || !id || !window.fetch) { window.location.reload(); return; }
    fetch('/captcha', { credentials: 'same-origin', cache: 'no-store' })
      .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.json(); })
      .then(function (c) {
        img.src = c.image; id.value = c.id;
        var input = form.querySelector('input[name="captcha"]');
        if (input) { input.value = ''; input.focus(); }
      })
      .catch(function () { window.location.reload(); });
  }
  function start() {
    var btn = document.getElementById('sms-send');
    if (btn) { countdown(btn); }
  }
  document.addEventListener('click', function (ev) {
    var link = ev.target.closest ? ev.target.closest('[data-captcha-refresh]') : null;
    if (!link) { return; }
    ev.preventDefault();
    refresh(link);
  });
  if (document.readyState === 'loading') { document.addEventListener('DOMContentLoaded', start); } else { start(); }
})();

// A live clock (the health code shows the time so a checker sees it is not a
// screenshot) and countdowns until a QR code expires. Both read their start
// from the page; the page stays correct without script.
(function () {
  'use strict';
  function pad(n) { return (n < 10 ? '0' : '') + n; }
  var MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  // The strftime subset of the locale files' date patterns (format_clock):
  // %Y %m %-m %d %-d %b %H %M %S %%; d is a UTC Date already shifted.
  function fill(pattern, d) {
    return pattern.replace(/%(-?)([YmdbHMS%])/g, function (all, bare, c) {
      var two = function (n) { return bare ? String(n) : pad(n); };
      switch (c) {
        case 'Y': return String(d.getUTCFullYear());
        case 'm': return two(d.getUTCMonth() + 1);
        case 'd': return two(d.getUTCDate());
        case 'b': return MONTHS[d.getUTCMonth()];
        case 'H': return two(d.getUTCHours());
        case 'M': return two(d.getUTCMinutes());
        case 'S': return two(d.getUTCSeconds());
        default: return '%';
      }
    });
  }
  var clocks = document.querySelectorAll('[data-clock]');
  if (clocks.length) {
    // The server's time at render (Unix seconds) minus this browser's, so
    // a phone with a wrong clock still shows the provider's time.
    var skew = 0;
    var first = parseInt(clocks[0].getAttribute('data-now') || '0', 10);
    if (first > 0) { skew = first * 1000 - Date.now(); }
    var offset = parseInt(clocks[0].getAttribute('data-offset') || '28800', 10);
    // Each language of a clock in its own pattern (a Tibetan clock shows
    // the Chinese beside it).
    var faces = [];
    Array.prototype.forEach.call(clocks, function (c) {
      var parts = c.querySelectorAll('[data-format]');
      if (!parts.length) { parts = [c]; }
      Array.prototype.forEach.call(parts, function (p) {
        faces.push([p, p.getAttribute('data-format') || '%Y年%m月%d日 %H:%M:%S']);
      });
    });
    var tickClock = function () {
      var d = new Date(Date.now() + skew + offset * 1000);
      for (var i = 0; i < faces.length; i++) { faces[i][0].textContent = fill(faces[i][1], d); }
    };
    tickClock();
    setInterval(tickClock, 1000);
  }
  var countdowns = document.querySelectorAll('[data-countdown]');
  Array.prototype.forEach.call(countdowns, function (el) {
    var left = parseInt(el.getAttribute('data-countdown') || '0', 10);
    var pattern = el.getAttribute('data-text') || '{seconds}';
    var tick = function () {
      if (left <= 0) { el.textContent = el.getAttribute('data-done') || ''; return; }
      el.textContent = pattern.replace('{seconds}', String(left));
      left -= 1;
      setTimeout(tick, 1000);
    };
    tick();
  });
})();

// A page that reloads itself to stay current (the health code before its
// code expires) says when, and lets the reader pause it (WCAG 2.2.1); the
// control stays hidden without script, when nothing reloads.
(function () {
  'use strict';
  var box = document.querySelector('[data-reload]');
  if (!box) { return; }
  var left = parseInt(box.getAttribute('data-reload') || '0', 10);
  var toggle = box.querySelector('[data-reload-toggle]');
  if (!(left > 0) || !toggle) { return; }
  var paused = false;
  function each(sel, f) { Array.prototype.forEach.call(box.querySelectorAll(sel), f); }
  function show() {
    box.setAttribute('data-state', paused ? 'paused' : 'running');
    each('[data-reload-running]', function (el) { el.hidden = paused; });
    each('[data-reload-paused]', function (el) { el.hidden = !paused; });
    each('[data-reload-left]', function (el) { el.textContent = String(left); });
  }
  toggle.addEventListener('click', function () { paused = !paused; show(); });
  box.hidden = false;
  show();
  setInterval(function () {
    if (paused || left <= 0) { return; }
    left -= 1;
    if (left <= 0) { window.location.reload(); return; }
    show();
  }, 1000);
})();
