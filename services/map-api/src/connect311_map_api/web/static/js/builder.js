/* The embed builder: choose filters and size, get the iframe snippet and a live preview. */
(function () {
  "use strict";
  var C = window.C311;
  var form = document.getElementById("builder-form");
  var snippet = document.getElementById("b-snippet");
  var preview = document.getElementById("b-preview");
  var openLink = document.getElementById("b-open");

  function size(input, fallback) {
    var n = parseInt(input.value, 10);
    return isNaN(n) ? fallback : Math.max(200, Math.min(2000, n));
  }

  function escapeAttr(value) {
    return String(value).replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  function update() {
    var path = "/embed" + C.query({
      agency: form.elements.agency.value,
      service_code: form.elements.service_code.value,
      status: form.elements.status.value
    });
    var url = window.location.origin + path;
    var w = size(form.elements.width, 600), h = size(form.elements.height, 450);
    // The snippet is text for the user to copy; it is shown in a textarea, never parsed here.
    snippet.value = '<iframe src="' + escapeAttr(url) + '" width="' + w + '" height="' + h +
      '" title="311 service requests map" loading="lazy" style="border:0"></iframe>';
    if (preview.getAttribute("src") !== path) preview.setAttribute("src", path);
    preview.setAttribute("width", String(w));
    preview.setAttribute("height", String(h));
    openLink.setAttribute("href", path);
  }

  form.addEventListener("change", update);
  form.addEventListener("input", update);
  form.addEventListener("submit", function (e) { e.preventDefault(); update(); });
  document.getElementById("b-copy").addEventListener("click", function () {
    var message = document.getElementById("b-message");
    snippet.select();
    var done = function () { message.textContent = "Snippet copied."; };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(snippet.value).then(done, function () { message.textContent = "Press Ctrl+C to copy the selected snippet."; });
    } else {
      message.textContent = "Press Ctrl+C to copy the selected snippet.";
    }
  });

  C.loadAgencies().then(function (items) { C.fillSelect(form.elements.agency, items); update(); }).catch(function () {});
  C.loadCategories().then(function (items) { C.fillSelect(form.elements.service_code, items); update(); }).catch(function () {});
  update();
})();
