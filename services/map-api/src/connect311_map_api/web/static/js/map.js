/* The map page: filter panel (kept in the URL so views can be shared), map and "Alert me". */
(function () {
  "use strict";
  var C = window.C311;
  var cfg = C.config();
  var form = document.getElementById("filters");
  var statusLine = document.getElementById("map-status");
  var alert = null;

  /** Filters from the URL query (the embed's "subscribe to this view" link uses these). */
  function filtersFromUrl() {
    var params = new URLSearchParams(window.location.search);
    var statuses = (params.get("status") || "").split(",").filter(Boolean);
    return {
      service_code: params.get("service_code") || "",
      agency: params.get("agency") || "",
      dataset: params.get("dataset") || "",
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
      dataset: form.elements.dataset.value,
      statuses: checked.length === 4 ? [] : checked,
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
    var url = window.location.pathname + C.query({
      service_code: f.service_code, agency: f.agency, dataset: f.dataset,
      status: f.statuses.join(","), since: f.since, until: f.until, q: f.q
    }) + window.location.hash;
    window.history.replaceState(null, "", url);
  }

  // On a phone the filters start folded so the map and "Alert me" are close together.
  if (window.matchMedia("(max-width: 899px)").matches) form.parentNode.open = false;

  var initial = filtersFromUrl();
  writeForm(initial);
  // "See it on the map" links (emails, the track page) name one request: centre on it and
  // open its popup. An unknown id leaves the map as it is and says so.
  var focusId = new URLSearchParams(window.location.search).get("request");
  var requestMap = null;
  // The list view of what the map shows (issue 16): "Show on the map" opens the request's
  // popup and moves the keyboard focus into it; a group's button zooms in to it.
  var requestList = C.setupRequestList(document.getElementById("request-list-section"), {
    show: function (feature) {
      requestMap.map.once("popupopen", function (event) {
        var title = event.popup.getElement().querySelector(".popup-title");
        if (!title) return;
        title.setAttribute("tabindex", "-1");
        title.focus();
      });
      requestMap.focusRequest(feature);
    },
    zoom: function (cell) {
      requestMap.map.setView([cell.lat, cell.long], Math.max(requestMap.map.getZoom() + 2, cfg.clusterBelowZoom || 0));
    }
  });
  requestMap = C.createRequestMap(document.getElementById("map"), cfg, {
    focusPending: Boolean(focusId),
    filters: initial,
    onStatus: function (text) { statusLine.textContent = text; },
    onView: requestList.update,
    onMapClick: function (latlng) { if (alert) alert.place(latlng); }
  });
  alert = C.setupAlert(requestMap);
  C.setupPlaceSearch(document.getElementById("map-search"), function (latlng, label) {
    requestMap.showPlace(latlng, label);
    return "Showing " + label + " on the map.";
  });

  if (focusId && requestMap.focusRequest) {
    C.fetchJSON("/api/requests/" + encodeURIComponent(focusId))
      .then(function (feature) { requestMap.focusRequest(feature); })
      .catch(function () {
        // The map waited for this request instead of fitting to the data: fit now.
        requestMap.fitToData().then(function (moved) { if (!moved) requestMap.reload(); });
        statusLine.textContent = "The request " + focusId + " is not on the map (it may have been removed).";
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
  C.loadDatasets().then(function (items) {
    C.fillSelect(form.elements.dataset, items, initial.dataset);
  }).catch(function () {});

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
