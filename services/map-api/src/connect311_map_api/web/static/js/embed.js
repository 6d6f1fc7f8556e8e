/* The embeddable map: fixed filters from the iframe URL and "subscribe to this view". */
(function () {
  "use strict";
  var C = window.C311;
  var _ = C._;
  var cfg = C.config();
  var fixed = cfg.fixedFilters || {};
  var filters = {
    agency: fixed.agency || "",
    service_code: fixed.service_code || "",
    dataset: fixed.dataset || "",
    statuses: (fixed.status || "").split(",").filter(Boolean)
  };
  var title = [fixed.agency, fixed.service_code].filter(Boolean).join(" · ");
  // An embed restricted to one dataset (`?dataset=crime`) is named after it ("Crime").
  var heading = fixed.dataset ? C.datasetInfo(fixed.dataset).label : _("311 requests");
  document.getElementById("embed-title").textContent = title ? heading + ": " + title : heading;
  document.getElementById("embed-subscribe").setAttribute("href", "/" + C.query({
    agency: filters.agency, service_code: filters.service_code, dataset: filters.dataset,
    status: filters.statuses.join(","),
    lang: C.lang === "en" ? "" : C.lang // the sign-up page opens in the embed's language
  }) + "#alert");
  var statusLine = document.getElementById("map-status");
  var requestMap = null;
  // The list of what the map shows, as on the map page: a keyboard and screen reader way in.
  var requestList = C.setupRequestList(
    document.getElementById("request-list-section"),
    C.listMapHandlers(function () { return requestMap; }, cfg)
  );
  // No centre in the snippet: the map fits to this embed's own requests (see pages.embed_view).
  requestMap = C.createRequestMap(document.getElementById("map"), cfg, {
    filters: filters,
    onStatus: function (text) { statusLine.textContent = text; },
    onView: requestList.update
  });
  // The builder (same origin) reads the preview's view to put it in the snippet.
  window.C311.embedMap = requestMap.map;
  // The legend names the symbols of what this embed shows: its one dataset, or every one.
  var legend = document.querySelector("[data-dataset-legend]");
  // Statuses only when a dataset shown has them (a crime-only embed is rendered without).
  if (fixed.dataset) C.mapParts.fillDatasetLegend(legend, [{ value: fixed.dataset }]);
  else C.loadDatasetLayers().then(function (items) {
    C.mapParts.fillDatasetLegend(legend, items);
    C.mapParts.showStatusParts(items.map(function (d) { return d.value; }));
  }).catch(function () {});
})();
