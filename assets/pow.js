// boxoffice: the join's proof of work, solved in the browser. The format is ALTCHA v2 with
// SHA-256 (see src/pow.rs): find the counter whose SHA-256(salt ‖ nonce ‖ counter as 4
// big-endian bytes) starts with the challenge's keyPrefix, and send base64(JSON {challenge,
// solution}) as the join form's `proof`.
//
// A join form with `data-challenge` asks that URL for a challenge before it is sent; when the
// sale is quiet the answer says none is required and the form goes at once.

function hexToBytes(hex) {
  var out = new Uint8Array(hex.length / 2);
  for (var i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
  return out;
}

function bytesToHex(bytes) {
  var hex = "";
  for (var i = 0; i < bytes.length; i++) hex += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16);
  return hex;
}

async function solveChallenge(challenge) {
  var p = challenge.parameters;
  var salt = hexToBytes(p.salt);
  var nonce = hexToBytes(p.nonce);
  var input = new Uint8Array(salt.length + nonce.length + 4);
  input.set(salt, 0);
  input.set(nonce, salt.length);
  var counterAt = salt.length + nonce.length;
  var view = new DataView(input.buffer);
  for (var counter = 0; counter <= 0xffffffff; counter++) {
    view.setUint32(counterAt, counter, false);
    var key = new Uint8Array(await crypto.subtle.digest("SHA-256", input)).slice(0, p.keyLength);
    var hex = bytesToHex(key);
    if (hex.startsWith(p.keyPrefix)) {
      return btoa(JSON.stringify({ challenge: challenge, solution: { counter: counter, derivedKey: hex } }));
    }
  }
  return null;
}

document.addEventListener("DOMContentLoaded", function () {
  var form = document.querySelector("form[data-challenge]");
  if (!form) return;
  var solved = false;
  form.addEventListener("submit", async function (event) {
    if (solved) return;
    event.preventDefault();
    var button = form.querySelector("button[type=submit]");
    var status = form.querySelector(".pow-status");
    if (button) button.disabled = true;
    try {
      var answer = await fetch(form.dataset.challenge, { credentials: "same-origin" }).then(function (r) {
        return r.json();
      });
      if (answer.required) {
        if (status) status.textContent = "This sale is busy: your browser is doing a short computation first…";
        form.querySelector("input[name=proof]").value = await solveChallenge(answer.challenge);
      }
    } catch (e) {
      // The join itself says what is wrong (a proof required, a rate limit): send it as it is.
    }
    solved = true;
    if (button) button.disabled = false;
    form.requestSubmit ? form.requestSubmit(button) : form.submit();
  });
});
