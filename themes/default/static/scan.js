// Scan-to-login waiting page (D1): follows the ticket with Server-Sent
// Events, or by polling /scan/status where EventSource is missing, and
// posts the completion form once the phone confirms. Without JavaScript the
// page offers a "continue" button instead (see _scan_qr.html).
(function () {
  'use strict';
  var box = document.getElementById('scan');
  if (!box) return;
  var ticket = box.getAttribute('data-ticket');
  var status = document.getElementById('scan-status');
  var form = document.getElementById('scan-complete');
  var FINAL = { confirmed: 1, denied: 1, expired: 1, used: 1 };
  var done = false;
  var source = null;

  function show(phase) {
    box.setAttribute('data-phase', phase);
    var text = box.getAttribute('data-msg-' + phase);
    if (text) status.textContent = text;
  }

  function onPhase(phase) {
    if (done) return;
    show(phase);
    if (!FINAL[phase]) return;
    done = true;
    if (source) source.close();
    if (phase === 'confirmed') form.submit();
  }

  function poll() {
    if (done) return;
    var xhr = new XMLHttpRequest();
    xhr.open('GET', '/scan/status?t=' + encodeURIComponent(ticket));
    xhr.onload = function () {
      try { onPhase(JSON.parse(xhr.responseText).status); } catch (e) { /* try again */ }
      setTimeout(poll, 2000);
    };
    xhr.onerror = function () { setTimeout(poll, 4000); };
    xhr.send();
  }

  if (FINAL[box.getAttribute('data-phase')]) {
    onPhase(box.getAttribute('data-phase'));
  } else if (window.EventSource) {
    source = new EventSource('/scan/events?t=' + encodeURIComponent(ticket));
    source.addEventListener('status', function (e) {
      try { onPhase(JSON.parse(e.data).status); } catch (err) { /* ignore a bad event */ }
    });
    // The browser reconnects by itself after a network error.
    window.addEventListener('pagehide', function () { if (source) source.close(); });
  } else {
    poll();
  }
})();
