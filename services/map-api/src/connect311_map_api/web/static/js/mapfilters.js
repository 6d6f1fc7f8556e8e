/* The request map's filters (the map's pieces begin here; mapparts.js lists them): their
   API query parameters, whether a live request passes them, and the tiles' filter key. */
(function () {
  "use strict";
  var C = window.C311;

  var LIST_PARAMS = ["agency", "dataset", "service_code", "status"];
  var ALL_STATUSES = ["open", "acknowledged", "in_progress", "closed"];

  /** The API query parameters of a filter object. */
  function filterParams(filters) {
    var statuses = (filters.statuses || []).filter(function (s) { return ALL_STATUSES.indexOf(s) >= 0; });
    return {
      status: statuses.length && statuses.length < ALL_STATUSES.length ? statuses.join(",") : "",
      service_code: filters.service_code || "",
      agency: filters.agency || "",
      // The layers switched on (an array; absent: every dataset), else one named dataset.
      dataset: Array.isArray(filters.datasets) ? filters.datasets.join(",") : filters.dataset || "",
      since: C.dayStart(filters.since || ""),
      until: C.dayEnd(filters.until || ""),
      q: filters.q || ""
    };
  }

  /** Whether a live feature passes the filters (the same rules the API applies). */
  function matches(feature, filters) {
    var p = feature.properties || {};
    var statuses = filters.statuses || [];
    if (statuses.length && statuses.indexOf(p.status) < 0) return false;
    if (filters.service_code && p.service_code !== filters.service_code) return false;
    if (filters.agency && p.agency_responsible !== filters.agency) return false;
    if (Array.isArray(filters.datasets)) {
      if (filters.datasets.indexOf(p.dataset) < 0) return false;
    } else if (filters.dataset && p.dataset !== filters.dataset) return false;
    var requested = p.requested_datetime ? new Date(p.requested_datetime) : null;
    if (requested && filters.since && requested < new Date(C.dayStart(filters.since))) return false;
    if (requested && filters.until && requested >= new Date(C.dayEnd(filters.until))) return false;
    if (filters.q) {
      var hay = [p.description, p.address, p.service_name].join(" ").toLowerCase();
      if (hay.indexOf(filters.q.toLowerCase()) < 0) return false;
    }
    return true;
  }

  /** The tiles' filter key in the server's canonical form (sorted names, sorted unique
      values, lower-case text), so the URL is the one every cache holds: no redirect. */
  function tileKey(filters) {
    var fp = filterParams(filters);
    return Object.keys(fp).filter(function (k) { return fp[k]; }).sort().map(function (k) {
      var value = String(fp[k]).trim();
      if (LIST_PARAMS.indexOf(k) >= 0) {
        value = value.split(",").map(function (v) { return v.trim(); }).filter(function (v, i, all) {
          return v && all.indexOf(v) === i;
        }).sort().join(",");
      }
      if (k === "q") value = value.toLowerCase();
      return k + "=" + encodeURIComponent(value);
    }).join("&");
  }

  window.C311.mapParts = Object.assign(window.C311.mapParts || {}, {
    filterParams: filterParams,
    matches: matches,
    tileKey: tileKey
  });
})();
