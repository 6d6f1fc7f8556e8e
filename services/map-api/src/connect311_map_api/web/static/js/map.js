/* The map page: filter panel (kept in the URL so views can be shared), map and "Alert me". */
(function () {
  "use strict";
  var C = window.C311;
  var _ = C._;
  var cfg = C.config();
  var form = document.getElementById("filters");
  var statusLine = document.getElementById("map-status");
  var alert = null;

  /** The layers in the URL: `datasets=311,crime` (`datasets=` alone: none), the embed's
      one `dataset=`, or null: every dataset. */
  function layersFromUrl(params) {
    if (params.has("datasets")) return (params.get("datasets") || "").split(",").filter(Boolean);
    return params.get("dataset") ? [params.get("dataset")] : null;
  }

  /** Filters from the URL query (the embed's "subscribe to this view" link uses these). */
  function filtersFromUrl() {
    var params = new URLSearchParams(window.location.search);
    var statuses = (params.get("status") || "").split(",").filter(Boolean);
    return {
      service_code: params.get("service_code") || "",
      agency: params.get("agency") || "",
      datasets: layersFromUrl(params),
      statuses: statuses,
      since: params.get("since") || "",
      until: params.get("until") || "",
      q: params.get("q") || ""
    };
  }

  function filtersFromForm() {
    var checked = Array.prototype.filter.call(form.querySelectorAll("input[name=status]"), function (i) { return i.checked; })
      .map(function (i) { return i.value; });
    return {
      service_code: form.elements.service_code.value,
      agency: form.elements.agency.value,
      datasets: layers.chosen(),
      // A hidden status filter (no shown layer has a status) narrows nothing.
      statuses: checked.length === 4 || !C.mapParts.anyStatus(layers.visible()) ? [] : checked,
      since: form.elements.since.value,
      until: form.elements.until.value,
      q: form.elements.q.value.trim()
    };
  }

  function writeForm(f) {
    form.elements.since.value = f.since;
    form.elements.until.value = f.until;
    form.elements.q.value = f.q;
    Array.prototype.forEach.call(form.querySelectorAll("input[name=status]"), function (i) {
      i.checked = !f.statuses.length || f.statuses.indexOf(i.value) >= 0;
    });
  }

  function writeUrl(f) {
    var query = C.query({
      service_code: f.service_code, agency: f.agency, datasets: f.datasets ? f.datasets.join(",") : "",
      status: f.statuses.join(","), since: f.since, until: f.until, q: f.q
    });
    // Every layer switched off is kept too (`datasets=` alone), so a reload shows none.
    if (f.datasets && !f.datasets.length) query += (query ? "&" : "?") + "datasets=";
    window.history.replaceState(null, "", window.location.pathname + query + window.location.hash);
    updateFeedLinks(f);
  }

  /** The Atom feed of what is in view (issue 19): the visible "Feed" link and the page's
      <link rel="alternate"> follow the filters and the part of the map shown. */
  function updateFeedLinks(f) {
    if (!requestMap) return;
    var params = C.filterParams(f);
    var b = null;
    try { b = requestMap.map.getBounds(); } catch (e) { /* no view yet: moveend follows */ }
    function clamp(v, limit) { return Math.max(-limit, Math.min(limit, v)).toFixed(4); }
    if (b) params.bbox = [clamp(b.getWest(), 180), clamp(b.getSouth(), 90), clamp(b.getEast(), 180), clamp(b.getNorth(), 90)].join(",");
    var href = "/feeds/requests.atom" + C.query(params);
    Array.prototype.forEach.call(document.querySelectorAll("[data-feed-link]"), function (link) {
      link.setAttribute("href", href);
    });
  }

  /** The layer switches: one checkbox per dataset present, with its symbol; a change
      applies at once and is kept in the URL (`datasets=`). Hidden with a single dataset. */
  var layers = (function () {
    var box = document.getElementById("layers");
    var list = document.getElementById("layer-list");
    var present = null; // the datasets present, once /api/datasets answered
    var wanted = null; // the URL's choice until then
    function chosen() {
      if (!present) return wanted;
      var on = Array.prototype.filter.call(list.querySelectorAll("input[name=layer]"), function (i) { return i.checked; })
        .map(function (i) { return i.value; });
      return on.length === present.length ? null : on; // all of them: no narrowing (new ones too)
    }
    /** The datasets shown: those switched on, or every one present (null: not known yet). */
    function visible() {
      return chosen() || present || null;
    }
    function show(items, initial) {
      present = items.map(function (d) { return d.value; });
      wanted = initial;
      C.clear(list);
      items.forEach(function (d) {
        var input = C.el("input", { type: "checkbox", name: "layer", value: d.value });
        input.checked = !initial || initial.indexOf(d.value) >= 0;
        input.addEventListener("change", apply);
        list.appendChild(C.el("label", { className: "check layer" }, [
          input,
          C.el("span", { className: "legend-symbol" }, [C.datasetSymbol(d.value, "legend")]),
          d.label + " (" + d.count + ")"
        ]));
      });
      box.hidden = items.length < 2;
    }
    return { chosen: chosen, show: show, visible: visible };
  })();

  /** A layer switched on or off: the map, the URL and the alert form follow. */
  function apply() {
    var f = Object.assign({}, requestMap.getFilters(), { datasets: layers.chosen() });
    // Only crime shown: no status to filter by (its incidents are stored as closed), so a
    // status choice made for 311 requests would hide them all. It is cleared, and shown again
    // with the statuses' layers.
    if (!C.mapParts.showStatusParts(layers.visible())) {
      f.statuses = [];
      Array.prototype.forEach.call(form.querySelectorAll("input[name=status]"), function (i) { i.checked = true; });
    }
    writeUrl(f);
    requestMap.setFilters(f);
  }

  // On a phone the filters start folded so the map and "Alert me" are close together.
  if (window.matchMedia("(max-width: 899px)").matches) form.parentNode.open = false;

  var initial = filtersFromUrl();
  if (!C.mapParts.showStatusParts(initial.datasets)) initial.statuses = [];
  writeForm(initial);
  // "See it on the map" links (emails, the track page) name one request: centre on it and
  // open its popup. An unknown id leaves the map as it is and says so.
  var focusId = new URLSearchParams(window.location.search).get("request");
  var requestMap = null;
  // The list view of what the map shows (issue 16): "Show on the map" opens the request's
  // popup and moves the keyboard focus into it; a group's button zooms in to it.
  var requestList = C.setupRequestList(
    document.getElementById("request-list-section"),
    C.listMapHandlers(function () { return requestMap; }, cfg)
  );
  requestMap = C.createRequestMap(document.getElementById("map"), cfg, {
    focusPending: Boolean(focusId),
    filters: initial,
    onStatus: function (text) { statusLine.textContent = text; },
    onView: requestList.update,
    onMapClick: function (latlng) { if (alert) alert.place(latlng); }
  });
  alert = C.setupAlert(requestMap);
  requestMap.map.on("moveend", function () { updateFeedLinks(requestMap.getFilters()); });
  updateFeedLinks(initial);
  C.setupPlaceSearch(document.getElementById("map-search"), function (latlng, label) {
    requestMap.showPlace(latlng, label);
    return _("Showing %(place)s on the map.", { place: label });
  });

  if (focusId && requestMap.focusRequest) {
    C.fetchJSON("/api/requests/" + encodeURIComponent(focusId))
      .then(function (feature) { requestMap.focusRequest(feature); })
      .catch(function () {
        // The map waited for this request instead of fitting to the data: fit now.
        requestMap.fitToData().then(function (moved) { if (!moved) requestMap.reload(); });
        statusLine.textContent = _("The request %(id)s is not on the map (it may have been removed).", { id: focusId });
      });
  }

  C.loadCategories().then(function (items) {
    C.fillSelect(form.elements.service_code, items, initial.service_code);
    C.fillSelect(document.getElementById("alert-category"), items, initial.service_code);
  }).catch(function () { /* the filter stays on "All" */ });
  C.loadAgencies().then(function (items) {
    C.fillSelect(form.elements.agency, items, initial.agency);
    C.fillSelect(document.getElementById("alert-agency"), items, initial.agency);
  }).catch(function () {});
  C.loadDatasetLayers().then(function (items) {
    layers.show(items, initial.datasets);
    C.mapParts.fillDatasetLegend(document.querySelector("[data-dataset-legend]"), items);
    // E.g. crime is the only dataset present: no statuses (a status in the URL is cleared).
    if (!C.mapParts.showStatusParts(layers.visible()) && requestMap.getFilters().statuses.length) apply();
    if (alert && alert.setDatasets) alert.setDatasets(items);
  }).catch(function () { /* every dataset stays shown */ });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var f = filtersFromForm();
    writeUrl(f);
    requestMap.setFilters(f);
  });
  form.addEventListener("reset", function () {
    // After the browser resets the fields: every status checked, everything else empty.
    setTimeout(function () {
      var f = filtersFromForm();
      writeUrl(f);
      requestMap.setFilters(f);
    }, 0);
  });
})();
