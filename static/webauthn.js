// careid: the WebAuthn calls for the sign-in and registration pages. Everything else (checks,
// decisions, errors) happens on the server; this file only converts between the server's JSON
// (base64url) and the browser's ArrayBuffers, and explains browser errors in plain words.
(function () {
  'use strict';

  function decode(text) {
    var s = text.replace(/-/g, '+').replace(/_/g, '/');
    while (s.length % 4) { s += '='; }
    var bin = atob(s);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out.buffer;
  }

  function encode(buffer) {
    var bytes = new Uint8Array(buffer);
    var bin = '';
    for (var i = 0; i < bytes.length; i++) { bin += String.fromCharCode(bytes[i]); }
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function creationOptions(o) {
    var p = o.publicKey;
    p.challenge = decode(p.challenge);
    p.user.id = decode(p.user.id);
    (p.excludeCredentials || []).forEach(function (c) { c.id = decode(c.id); });
    return { publicKey: p };
  }

  function requestOptions(o) {
    var p = o.publicKey;
    p.challenge = decode(p.challenge);
    (p.allowCredentials || []).forEach(function (c) { c.id = decode(c.id); });
    var options = { publicKey: p };
    if (o.mediation) { options.mediation = o.mediation; }
    return options;
  }

  function registrationJson(c) {
    var r = c.response;
    return {
      id: c.id, rawId: encode(c.rawId), type: c.type,
      response: {
        attestationObject: encode(r.attestationObject),
        clientDataJSON: encode(r.clientDataJSON),
        transports: r.getTransports ? r.getTransports() : []
      },
      extensions: c.getClientExtensionResults()
    };
  }

  function assertionJson(c) {
    var r = c.response;
    return {
      id: c.id, rawId: encode(c.rawId), type: c.type,
      response: {
        authenticatorData: encode(r.authenticatorData),
        clientDataJSON: encode(r.clientDataJSON),
        signature: encode(r.signature),
        userHandle: r.userHandle ? encode(r.userHandle) : null
      },
      extensions: c.getClientExtensionResults()
    };
  }

  function explain(e) {
    switch (e && e.name) {
      case 'NotAllowedError':
        return 'Nothing was used: the request was cancelled, timed out, or this authenticator is not registered here. Try again, or use your smartcard.';
      case 'InvalidStateError':
        return 'This authenticator is already registered to your Care Identity.';
      case 'NotSupportedError':
        return 'This browser or authenticator cannot do what was asked. Try another authenticator.';
      case 'SecurityError':
        return 'The browser refused: this page is not served from careid\'s own address.';
      case 'AbortError':
        return 'Cancelled.';
      case 'CareidError':
        return e.message;
      default:
        return 'Something went wrong: ' + (e && e.message ? e.message : e);
    }
  }

  function CareidError(message) { this.name = 'CareidError'; this.message = message; }

  function postJson(url, body, signal) {
    return fetch(url, {
      method: 'POST', credentials: 'same-origin', signal: signal,
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) {
        if (!r.ok) { throw new CareidError(j.error_description || 'careid refused the request.'); }
        return j;
      });
    });
  }

  function status(text) {
    var el = document.getElementById('webauthn-status');
    if (el) { el.textContent = text; }
  }

  function submitWith(form, json) {
    form.elements.credential.value = JSON.stringify(json);
    form.submit();
  }

  function supported() {
    if (window.PublicKeyCredential && navigator.credentials) { return true; }
    status('This browser does not support security keys or passkeys. Use your smartcard.');
    return false;
  }

  function setUpSignIn(section) {
    var form = document.getElementById('webauthn-form');
    var button = document.getElementById('webauthn-signin-button');
    var url = section.dataset.optionsUrl;
    var flow = section.dataset.flow;
    // Passkey autofill runs until the button is used; the button aborts it first.
    var conditional = new AbortController();
    button.addEventListener('click', function () {
      if (!supported()) { return; }
      conditional.abort();
      var username = document.getElementById('webauthn-username').value.trim();
      status('Follow your browser\'s instructions…');
      postJson(url, { flow: flow, username: username || null })
        .then(function (o) { return navigator.credentials.get(requestOptions(o)); })
        .then(function (c) { status('Checking…'); submitWith(form, assertionJson(c)); })
        .catch(function (e) { status(explain(e)); });
    });
    // Passkey autofill: offered in the username field where the browser supports it.
    if (window.PublicKeyCredential && PublicKeyCredential.isConditionalMediationAvailable) {
      var signal = conditional.signal;
      PublicKeyCredential.isConditionalMediationAvailable().then(function (available) {
        if (!available || signal.aborted) { return; }
        return postJson(url, { flow: flow, conditional: true }, signal)
          .then(function (o) {
            if (signal.aborted) { return null; }
            var options = requestOptions(o);
            options.signal = signal;
            return navigator.credentials.get(options);
          })
          .then(function (c) { if (c && !signal.aborted) { status('Checking…'); submitWith(form, assertionJson(c)); } });
      }).catch(function (e) { if (!signal.aborted && e && e.name !== 'AbortError') { status(explain(e)); } });
    }
  }

  function setUpRegistration(section) {
    var form = document.getElementById('webauthn-form');
    var button = document.getElementById('webauthn-register-button');
    var url = section.dataset.optionsUrl;
    button.addEventListener('click', function () {
      if (!supported()) { return; }
      var kind = form.querySelector('input[name=kind]:checked');
      status('Follow your browser\'s instructions…');
      postJson(url, {
        invitation: document.getElementById('webauthn-invitation').value.trim() || null,
        kind: kind ? kind.value : 'security_key',
        name: document.getElementById('webauthn-name').value
      })
        .then(function (o) { return navigator.credentials.create(creationOptions(o)); })
        .then(function (c) { status('Checking…'); submitWith(form, registrationJson(c)); })
        .catch(function (e) { status(explain(e)); });
    });
  }

  var signIn = document.getElementById('webauthn-signin');
  if (signIn) { setUpSignIn(signIn); }
  var register = document.getElementById('webauthn-register');
  if (register) { setUpRegistration(register); }
})();
