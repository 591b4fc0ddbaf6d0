// WebAuthn browser calls for the passkey forms (sign-in, step-up,
// registration). A form marked data-webauthn="create|get" names its begin
// endpoint in data-begin; the button fetches the options (JSON from
// webauthn-rs, binary fields in base64url), asks the authenticator, puts
// the answer into the hidden "credential" field and submits the form, so
// the server answers with an ordinary redirect. On the sign-in page an
// empty account field means a usernameless (discoverable) passkey. Same-origin
// file: the CSP allows no inline script.
(function () {
  'use strict';

  function toBuf(s) {
    s = s.replace(/-/g, '+').replace(/_/g, '/');
    while (s.length % 4) { s += '='; }
    var bin = atob(s);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out.buffer;
  }

  function toB64url(buf) {
    if (!buf) { return null; }
    var bytes = new Uint8Array(buf);
    var bin = '';
    for (var i = 0; i < bytes.length; i++) { bin += String.fromCharCode(bytes[i]); }
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function creationOptions(o) {
    var pk = o.publicKey;
    pk.challenge = toBuf(pk.challenge);
    pk.user.id = toBuf(pk.user.id);
    (pk.excludeCredentials || []).forEach(function (c) { c.id = toBuf(c.id); });
    return { publicKey: pk };
  }

  function requestOptions(o) {
    var pk = o.publicKey;
    pk.challenge = toBuf(pk.challenge);
    (pk.allowCredentials || []).forEach(function (c) { c.id = toBuf(c.id); });
    return { publicKey: pk };
  }

  function extensions(c) {
    return c.getClientExtensionResults ? c.getClientExtensionResults() : {};
  }

  function registration(c) {
    return {
      id: c.id,
      rawId: toB64url(c.rawId),
      type: c.type,
      extensions: extensions(c),
      response: {
        attestationObject: toB64url(c.response.attestationObject),
        clientDataJSON: toB64url(c.response.clientDataJSON),
        transports: c.response.getTransports ? c.response.getTransports() : undefined
      }
    };
  }

  function assertion(c) {
    return {
      id: c.id,
      rawId: toB64url(c.rawId),
      type: c.type,
      extensions: extensions(c),
      response: {
        authenticatorData: toB64url(c.response.authenticatorData),
        clientDataJSON: toB64url(c.response.clientDataJSON),
        signature: toB64url(c.response.signature),
        userHandle: toB64url(c.response.userHandle)
      }
    };
  }

  // Conditional UI: a usernameless request waits quietly for the person to
  // pick a passkey from the username field's autofill (login page only,
  // data-conditional). The button aborts it and starts its own request.
  var pending = null;

  function conditional(form, status) {
    if (!form.dataset.conditional || !window.PublicKeyCredential ||
        !PublicKeyCredential.isConditionalMediationAvailable || !window.AbortController) { return; }
    PublicKeyCredential.isConditionalMediationAvailable().then(function (ok) {
      if (!ok) { return; }
      var body = new URLSearchParams();
      ['csrf', 'req'].forEach(function (name) {
        if (form.elements[name]) { body.append(name, form.elements[name].value); }
      });
      body.append('username', '');
      pending = new AbortController();
      var signal = pending.signal;
      fetch(form.dataset.begin, { method: 'POST', body: body, credentials: 'same-origin' })
        .then(function (r) { if (!r.ok) { throw new Error(''); } return r.json(); })
        .then(function (begun) {
          var opts = requestOptions(begun.options);
          opts.mediation = 'conditional';
          opts.signal = signal;
          return navigator.credentials.get(opts).then(function (c) {
            form.elements.ceremony.value = begun.ceremony;
            return assertion(c);
          });
        })
        .then(function (answer) {
          form.elements.credential.value = JSON.stringify(answer);
          form.submit();
        })
        .catch(function () { /* aborted or dismissed: the page works as before */ });
    });
  }

  function start(form, status) {
    if (pending) { pending.abort(); pending = null; }
    var body = new URLSearchParams();
    ['csrf', 'req', 'flow', 'hold'].forEach(function (name) {
      if (form.elements[name]) { body.append(name, form.elements[name].value); }
    });
    if (form.dataset.usernameFrom) {
      var field = document.getElementById(form.dataset.usernameFrom);
      body.append('username', field ? field.value : '');
    }
    status.textContent = '';
    fetch(form.dataset.begin, { method: 'POST', body: body, credentials: 'same-origin' })
      .then(function (r) {
        return r.json().then(function (j) {
          if (!r.ok) { throw new Error(j.error || r.statusText); }
          return j;
        });
      })
      .then(function (begun) {
        form.elements.ceremony.value = begun.ceremony;
        if (form.dataset.webauthn === 'create') {
          return navigator.credentials.create(creationOptions(begun.options)).then(registration);
        }
        return navigator.credentials.get(requestOptions(begun.options)).then(assertion);
      })
      .then(function (answer) {
        form.elements.credential.value = JSON.stringify(answer);
        form.submit();
      })
      .catch(function (e) {
        status.textContent = (e && e.message && e.name === 'Error') ? e.message : form.dataset.failed;
      });
  }

  document.querySelectorAll('form[data-webauthn]').forEach(function (form) {
    var button = form.querySelector('[data-webauthn-start]');
    var status = form.querySelector('[data-webauthn-status]');
    if (!button || !status) { return; }
    if (!window.PublicKeyCredential || !navigator.credentials) {
      status.textContent = form.dataset.unsupported || '';
      return;
    }
    button.hidden = false;
    button.addEventListener('click', function () { start(form, status); });
    conditional(form, status);
  });
}());
