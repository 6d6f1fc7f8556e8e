/* The embed builder: choose filters, size and starting view; get the iframe snippet and a
   live preview. The starting view is the preview's own: move it, then "Use this view". */
(function () {
  "use strict";
  var C = window.C311;
  var _ = C._;
  var form = document.getElementById("builder-form");
  var snippet = document.getElementById("b-snippet");
  var preview = document.getElementById("b-preview");
  var openLink = document.getElementById("b-open");
  var viewText = document.getElementById("b-view-text");
  var view = null; // {lat, long, zoom} when the department chose one; null: fit to requests

  function size(input, fallback) {
    var n = parseInt(input.value, 10);
    return isNaN(n) ? fallback : Math.max(200, Math.min(2000, n));
  }

  function escapeAttr(value) {
    return String(value).replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  function describeView() {
    viewText.textContent = view
      ? _("Starts at %(lat)s, %(long)s (zoom %(zoom)s).", { lat: view.lat, long: view.long, zoom: view.zoom })
      : _("Starts fitted to the requests it shows.");
  }

  function update() {
    var params = {
      dataset: form.elements.dataset.value, // one dataset only (e.g. crime), or all
      agency: form.elements.agency.value,
      service_code: form.elements.service_code.value,
      status: form.elements.status.value
    };
    if (view) { params.lat = view.lat; params.long = view.long; params.zoom = view.zoom; }
    var path = "/embed" + C.query(params);
    var url = window.location.origin + path;
    var w = size(form.elements.width, 600), h = size(form.elements.height, 450);
    // The snippet is text for the user to copy; it is shown in a textarea, never parsed here.
    snippet.value = '<iframe src="' + escapeAttr(url) + '" width="' + w + '" height="' + h +
      '" title="' + escapeAttr(_("311 service requests map")) + '" loading="lazy" style="border:0"></iframe>';
    if (preview.getAttribute("src") !== path) preview.setAttribute("src", path);
    preview.setAttribute("width", String(w));
    preview.setAttribute("height", String(h));
    openLink.setAttribute("href", path);
    describeView();
  }

  /** The preview's current centre and zoom (the preview is this site's own page). */
  function previewView() {
    try {
      var map = preview.contentWindow && preview.contentWindow.C311 && preview.contentWindow.C311.embedMap;
      if (!map) return null;
      var c = map.getCenter();
      return { lat: c.lat.toFixed(5), long: c.lng.toFixed(5), zoom: map.getZoom() };
    } catch (e) {
      return null;
    }
  }

  form.addEventListener("change", update);
  form.addEventListener("input", update);
  form.addEventListener("submit", function (e) { e.preventDefault(); update(); });
  document.getElementById("b-use-view").addEventListener("click", function () {
    var message = document.getElementById("b-message");
    var chosen = previewView();
    if (!chosen) { message.textContent = _("The preview is still loading; try again in a moment."); return; }
    view = chosen;
    message.textContent = _("The snippet now opens the map at the preview's view.");
    update();
  });
  document.getElementById("b-fit-view").addEventListener("click", function () {
    view = null;
    document.getElementById("b-message").textContent = _("The snippet now opens fitted to its requests.");
    update();
  });
  document.getElementById("b-copy").addEventListener("click", function () {
    var message = document.getElementById("b-message");
    snippet.select();
    var done = function () { message.textContent = _("Snippet copied."); };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(snippet.value).then(done, function () { message.textContent = _("Press Ctrl+C to copy the selected snippet."); });
    } else {
      message.textContent = _("Press Ctrl+C to copy the selected snippet.");
    }
  });

  C.loadDatasets().then(function (items) { C.fillSelect(form.elements.dataset, items); update(); }).catch(function () {});
  C.loadAgencies().then(function (items) { C.fillSelect(form.elements.agency, items); update(); }).catch(function () {});
  C.loadCategories().then(function (items) { C.fillSelect(form.elements.service_code, items); update(); }).catch(function () {});
  update();
})();
