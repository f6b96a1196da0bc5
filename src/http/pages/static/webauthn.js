// Passkeys on the sign-in pages. The server's options are JSON with base64url binary
// fields (as webauthn-rs writes them); the browser API wants ArrayBuffers, and the answer
// goes back as JSON with base64url fields. Without JavaScript the pages still work with
// passwords and codes.
(function () {
  "use strict";
  if (!window.PublicKeyCredential) return;
  function buf(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }
  function b64(b) {
    var bytes = new Uint8Array(b), bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function requestOptions(o) {
    var pk = Object.assign({}, o.publicKey);
    pk.challenge = buf(pk.challenge);
    pk.allowCredentials = (pk.allowCredentials || []).map(function (c) {
      return Object.assign({}, c, { id: buf(c.id) });
    });
    return pk;
  }
  function assertion(c) {
    var r = c.response;
    return JSON.stringify({
      id: c.id, rawId: b64(c.rawId), type: c.type,
      response: {
        authenticatorData: b64(r.authenticatorData),
        clientDataJSON: b64(r.clientDataJSON),
        signature: b64(r.signature),
        userHandle: r.userHandle ? b64(r.userHandle) : null
      },
      extensions: c.getClientExtensionResults ? c.getClientExtensionResults() : {}
    });
  }
  function fail(form, e) {
    var p = form.querySelector(".passkey-error");
    // The sentence comes from the page, in its language; "%s" is where the reason goes.
    var reason = String(e && e.message || e);
    var sentence = (p && p.dataset.message) || "The passkey did not work: %s. Try again or use another way.";
    if (p) { p.hidden = false; p.textContent = sentence.replace("%s", reason); }
  }
  // The second step: the options are on the button; the answer fills the form's field.
  var second = document.getElementById("passkey-answer");
  if (second) {
    second.hidden = false;
    second.addEventListener("click", function () {
      var form = second.form;
      navigator.credentials.get({ publicKey: requestOptions(JSON.parse(second.dataset.options)) })
        .then(function (c) { form.elements.webauthn.value = assertion(c); form.submit(); })
        .catch(function (e) { fail(form, e); });
    });
  }
  // The account page: register a new passkey. The options come from the server with the
  // form's CSRF token and the chosen name; the attestation goes back in the form.
  var register = document.getElementById("passkey-register");
  if (register) {
    var add = document.getElementById("passkey-add");
    add.hidden = false;
    add.addEventListener("click", function () {
      var body = new URLSearchParams({ csrf: register.elements.csrf.value, name: register.elements.name.value });
      fetch(register.dataset.begin, { method: "POST", credentials: "same-origin", body: body })
        .then(function (r) { return r.json().then(function (j) { if (!r.ok) throw new Error(j.error || r.status); return j; }); })
        .then(function (c) {
          var pk = Object.assign({}, c.options.publicKey);
          pk.challenge = buf(pk.challenge);
          pk.user = Object.assign({}, pk.user, { id: buf(pk.user.id) });
          pk.excludeCredentials = (pk.excludeCredentials || []).map(function (e) {
            return Object.assign({}, e, { id: buf(e.id) });
          });
          return navigator.credentials.create({ publicKey: pk }).then(function (cred) {
            var r = cred.response;
            register.elements.ceremony_token.value = c.ceremony_token;
            register.elements.credential.value = JSON.stringify({
              id: cred.id, rawId: b64(cred.rawId), type: cred.type,
              response: {
                attestationObject: b64(r.attestationObject),
                clientDataJSON: b64(r.clientDataJSON),
                transports: r.getTransports ? r.getTransports() : undefined
              },
              extensions: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {}
            });
            register.submit();
          });
        })
        .catch(function (e) { fail(register, e); });
    });
  }
  // Passwordless: a button, and autofill (conditional UI) where the browser offers it.
  var form = document.getElementById("passkey-form");
  if (!form) return;
  var pending = null;
  function begin(mediation) {
    if (pending) pending.abort();
    var ctl = new AbortController();
    pending = ctl;
    return fetch(form.dataset.begin, { method: "POST", credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error("the server refused (" + r.status + ")"); return r.json(); })
      .then(function (c) {
        var opts = { publicKey: requestOptions(c.options), signal: ctl.signal };
        if (mediation) opts.mediation = mediation;
        return navigator.credentials.get(opts).then(function (cred) {
          form.elements.ceremony_token.value = c.ceremony_token;
          form.elements.credential.value = assertion(cred);
          form.submit();
        });
      });
  }
  var button = document.getElementById("passkey-signin");
  button.hidden = false;
  button.addEventListener("click", function () {
    begin(null).catch(function (e) { if (e.name !== "AbortError") fail(form, e); });
  });
  if (PublicKeyCredential.isConditionalMediationAvailable) {
    PublicKeyCredential.isConditionalMediationAvailable().then(function (ok) {
      if (ok) begin("conditional").catch(function () {});
    });
  }
})();
