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
