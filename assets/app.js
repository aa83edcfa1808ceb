// boxoffice: small behaviours on top of HTMX. Served from the app itself (the CSP allows only
// the app's own scripts).

// The waiting room's poll answers 503 with a fragment that keeps polling when the queue cannot
// be read for a moment, 429 with one that polls again more slowly after too many polls, and 404 with a message when the reservation is not this browser's:
// swap both in, so the page never keeps showing a place in line that is no longer true.
if (window.htmx) {
  htmx.config.responseHandling = [
    { code: "204", swap: false },
    { code: "[23]..", swap: true },
    { code: "503", swap: true },
    { code: "429", swap: true },
    { code: "404", swap: true },
    { code: "[45]..", swap: false, error: true },
    { code: "...", swap: false },
  ];
}

// Any other failure of the poll (a network error, a proxy's 502 during a deploy, a 500) swaps
// nothing in, and the fragment's one-shot trigger would never fire again: the page would go on
// showing a place in line it no longer checks, and the buyer would lose that place for not
// polling. Reload the waiting room after a pause instead; it polls again from there.
document.addEventListener("DOMContentLoaded", function () {
  if (!document.getElementById("queue")) return;
  var retrying = false;
  function retryLater() {
    if (retrying) return;
    retrying = true;
    setTimeout(function () { window.location.reload(); }, 5000);
  }
  document.body.addEventListener("htmx:sendError", retryLater);
  document.body.addEventListener("htmx:responseError", retryLater);
});

// Checkout countdown. The server says how many milliseconds the hold has left (Redis's clock
// is the truth); the page counts down from when it arrived and, when time is up, reloads
// checkout, which sends the buyer to the event list with "Your reservation expired".
document.addEventListener("DOMContentLoaded", function () {
  var el = document.getElementById("countdown");
  if (!el) return;
  var leftMs = parseInt(el.getAttribute("data-expires-in-ms"), 10);
  if (isNaN(leftMs)) return;
  var end = Date.now() + leftMs;
  // A little slack so the reload lands after the hold has lapsed in Redis.
  var slackMs = 300;
  var next = el.getAttribute("data-on-expiry");
  function tick() {
    var left = Math.max(0, end - Date.now());
    var secs = Math.ceil(left / 1000);
    el.textContent = Math.floor(secs / 60) + ":" + String(secs % 60).padStart(2, "0");
    if (secs <= 60) el.classList.add("urgent");
    if (left <= 0) {
      setTimeout(function () { window.location.assign(next); }, slackMs);
      return;
    }
    setTimeout(tick, left % 1000 || 1000);
  }
  tick();
});
