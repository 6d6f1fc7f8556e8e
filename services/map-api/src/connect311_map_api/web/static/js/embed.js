/* The embeddable map: fixed filters from the iframe URL and "subscribe to this view". */
(function () {
  "use strict";
  var C = window.C311;
  var cfg = C.config();
  var fixed = cfg.fixedFilters || {};
  var filters = {
    agency: fixed.agency || "",
    service_code: fixed.service_code || "",
    dataset: fixed.dataset || "",
    statuses: (fixed.status || "").split(",").filter(Boolean)
  };
  var title = [fixed.agency, fixed.service_code].filter(Boolean).join(" · ");
  document.getElementById("embed-title").textContent = title ? "311 requests: " + title : "311 requests";
  document.getElementById("embed-subscribe").setAttribute("href", "/" + C.query({
    agency: filters.agency, service_code: filters.service_code, dataset: filters.dataset,
    status: filters.statuses.join(",")
  }) + "#alert");
  var statusLine = document.getElementById("map-status");
  // No centre in the snippet: the map fits to this embed's own requests (see pages.embed_view).
  var requestMap = C.createRequestMap(document.getElementById("map"), cfg, {
    filters: filters,
    onStatus: function (text) { statusLine.textContent = text; }
  });
  // The builder (same origin) reads the preview's view to put it in the snippet.
  window.C311.embedMap = requestMap.map;
})();
