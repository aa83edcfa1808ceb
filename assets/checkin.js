// boxoffice door check-in: after each answer the code field is emptied and focused again, so a
// USB scanner (which types the code and presses Enter) can scan the next ticket at once. Where
// the browser has BarcodeDetector, a button reads QR codes from the camera and submits them.
// Served from the app itself: the CSP allows no inline script.
document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("scan");
  var input = document.getElementById("code");
  if (!form || !input) return;

  document.body.addEventListener("htmx:afterRequest", function (e) {
    if (e.detail.elt !== form) return;
    input.value = "";
    input.focus();
  });

  var button = document.getElementById("camera");
  var video = document.getElementById("camera-view");
  if (!("BarcodeDetector" in window) || !navigator.mediaDevices || !button || !video) return;
  button.hidden = false;
  var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
  var last = "";
  var lastAt = 0;

  function submit(code) {
    input.value = code;
    if (window.htmx) {
      htmx.trigger(form, "submit");
    } else {
      form.submit();
    }
  }

  function scanFrame() {
    if (video.hidden) return;
    detector.detect(video).then(function (codes) {
      var now = Date.now();
      // One code held in front of the camera is submitted once, not once per frame.
      if (codes.length && (codes[0].rawValue !== last || now - lastAt > 3000)) {
        last = codes[0].rawValue;
        lastAt = now;
        submit(last);
      }
    }).catch(function () {}).then(function () {
      setTimeout(scanFrame, 250);
    });
  }

  button.addEventListener("click", function () {
    if (!video.hidden) {
      video.hidden = true;
      if (video.srcObject) video.srcObject.getTracks().forEach(function (t) { t.stop(); });
      video.srcObject = null;
      button.textContent = "Scan with the camera";
      input.focus();
      return;
    }
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } }).then(function (stream) {
      video.srcObject = stream;
      video.hidden = false;
      button.textContent = "Stop the camera";
      return video.play();
    }).then(scanFrame).catch(function () {
      button.textContent = "The camera is not available";
    });
  });
});
