/* The datasets (311 requests, code violations, crime…) in the page's words and shapes, and
   the filters' choices read from the API (categories, agencies, datasets) as <select>
   options, grouped by dataset. After common.js and statuses.js. */
(function () {
  "use strict";
  var C = window.C311;
  var _ = C._, _n = C._n, el = C.el, config = C.config, fetchJSON = C.fetchJSON;
  var formatNumber = C.formatNumber, safeStatus = C.safeStatus;

  var datasetWords = null; // the page's dataset words (config.datasets), read once

  /** How a dataset is named and drawn: the page's words for a known one ("Crime", "crime
      incident", no status, a triangle), an unknown one by its own name, like 311 requests. */
  function datasetInfo(name) {
    if (!datasetWords) datasetWords = config().datasets || {};
    var key = String(name || "");
    var known = Object.prototype.hasOwnProperty.call(datasetWords, key) ? datasetWords[key] : null;
    if (known) return Object.assign({ dataset: key }, known);
    var label = key.replace(/_/g, " ").trim() || _("Records");
    return {
      dataset: key, label: label.charAt(0).toUpperCase() + label.slice(1), item: _("record"), items: _("records"),
      hasStatus: true, symbol: "circle", kindLabel: _("Category"), idLabel: _("Id"), descriptionLabel: _("Description")
    };
  }

  /** Dataset names sorted as the layers are (311, code violations, crime), others by name. */
  function inLayerOrder(names) {
    if (!datasetWords) datasetWords = config().datasets || {};
    var order = Object.keys(datasetWords);
    var rank = function (d) { var i = order.indexOf(d); return i < 0 ? order.length : i; };
    return names.slice().sort(function (a, b) { return rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0); });
  }

  /** Whether counts by dataset name anything but 311 requests (then they are worded per
      dataset; 311 alone keeps the plain "12 requests"). */
  function otherDatasets(byDataset) {
    return Object.keys(byDataset || {}).some(function (d) { return d !== "311" && byDataset[d]; });
  }

  /** Counts by dataset in words, in the layers' order: "12 requests, 3 crime incidents". */
  function datasetCounts(byDataset) {
    return inLayerOrder(Object.keys(byDataset || {}).filter(function (d) { return byDataset[d]; })).map(function (d) {
      var n = byDataset[d];
      if (d === "311") return _n("%(count)s request", "%(count)s requests", n);
      var info = datasetInfo(d);
      return formatNumber(n) + " " + (n === 1 ? info.item : info.items);
    }).join(", ");
  }

  var SVG_NS = "http://www.w3.org/2000/svg";
  var SHAPES = { // viewBox 0 0 20 20; the shape tells the dataset apart, never colour alone
    triangle: "M10 1.8 L18.6 17.6 L1.4 17.6 Z",
    house: "M10 1.6 L18.4 8.8 L18.4 18.4 L1.6 18.4 L1.6 8.8 Z",
    circle: "M10 1.8 A8.2 8.2 0 1 1 9.99 1.8 Z"
  };

  /** A dataset's symbol as an SVG (decorative: its words are always beside it). A record
      with a status is filled in its status colour; one without (crime) in its own. */
  function datasetSymbol(name, status) {
    var info = datasetInfo(name);
    var shape = Object.prototype.hasOwnProperty.call(SHAPES, info.symbol) ? info.symbol : "circle";
    var svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", "0 0 20 20");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    var cls = "sym sym-" + shape + (info.hasStatus ? " status-" + safeStatus(status) : " no-status");
    svg.setAttribute("class", cls);
    ["sym-outline", "sym-shape"].forEach(function (part) {
      var path = document.createElementNS(SVG_NS, "path");
      path.setAttribute("d", SHAPES[shape]);
      path.setAttribute("class", part);
      svg.appendChild(path);
    });
    return svg;
  }

  /** The datasets present, [{value, label, count}] in the page's words (from /api/datasets). */
  function loadDatasetLayers() {
    return fetchJSON("/api/datasets").then(function (body) {
      return (Array.isArray(body) ? body : []).filter(function (d) { return d && d.dataset; }).map(function (d) {
        return { value: String(d.dataset), label: datasetInfo(d.dataset).label, count: Number(d.count) || 0 };
      });
    });
  }

  /** Fill a <select> with options from [{value,label}], keeping its first (empty) option.
      Items naming their `datasets` are grouped by dataset when there are several
      (<optgroup label="Crime">: an offence type is not a 311 category). */
  function fillSelect(select, items, selected) {
    Array.prototype.slice.call(select.querySelectorAll("optgroup")).forEach(function (g) { select.removeChild(g); });
    while (select.options.length > 1) select.remove(1);
    var groups = Object.create(null);
    items.forEach(function (item) {
      (item.datasets || []).forEach(function (d) { (groups[d] = groups[d] || []).push(item); });
    });
    var names = Object.keys(groups);
    if (names.length < 2) {
      items.forEach(function (item) { select.appendChild(option(item, selected)); });
      return;
    }
    inLayerOrder(names).forEach(function (d) {
      var group = el("optgroup", { label: datasetInfo(d).label });
      groups[d].forEach(function (item) { group.appendChild(option(item, selected)); });
      select.appendChild(group);
    });
  }

  function option(item, selected) {
    var node = el("option", { value: item.value, text: item.label });
    if (selected && selected === item.value) node.selected = true;
    return node;
  }

  /** Turn the API's list answers (plain strings or objects) into {value,label} items. */
  function toItems(body, valueKeys, labelKeys) {
    var list = Array.isArray(body) ? body : (body && (body.items || body.categories || body.agencies || body.datasets || body.results)) || [];
    return list.map(function (item) {
      if (typeof item === "string") return { value: item, label: item };
      var value = null, label = null;
      valueKeys.forEach(function (k) { if (value === null && item[k] !== undefined && item[k] !== null) value = item[k]; });
      labelKeys.forEach(function (k) { if (label === null && item[k] !== undefined && item[k] !== null) label = item[k]; });
      value = value === null ? "" : String(value);
      label = label === null ? value : String(label);
      if (typeof item.count === "number") label += " (" + formatNumber(item.count) + ")";
      return { value: value, label: label };
    }).filter(function (item) { return item.value !== ""; });
  }

  function loadCategories() {
    return fetchJSON("/api/categories").then(function (body) {
      // Which datasets each occurs in, for grouping (toItems keeps value and label only).
      var datasets = Object.create(null); // keys are feed text: no inherited names
      (Array.isArray(body) ? body : []).forEach(function (c) {
        if (c && Array.isArray(c.datasets)) datasets[String(c.service_code)] = c.datasets;
      });
      return toItems(body, ["service_code", "code", "value"], ["service_name", "name", "label", "service_code"])
        .map(function (item) { return Object.assign({ datasets: datasets[item.value] || [] }, item); });
    });
  }

  function loadAgencies() {
    return fetchJSON("/api/agencies").then(function (body) {
      return toItems(body, ["agency_responsible", "agency", "name", "value"], ["agency_responsible", "agency", "name", "label"]);
    });
  }

  function loadDatasets() {
    // Named in the page's words ("Code violations (4279)"), not by the feed's key.
    return loadDatasetLayers().then(function (items) {
      return items.map(function (d) { return { value: d.value, label: d.label + " (" + d.count + ")" }; });
    });
  }

  Object.assign(window.C311, {
    fillSelect: fillSelect,
    loadCategories: loadCategories,
    loadAgencies: loadAgencies,
    loadDatasets: loadDatasets,
    datasetInfo: datasetInfo,
    datasetCounts: datasetCounts,
    otherDatasets: otherDatasets,
    datasetSymbol: datasetSymbol,
    loadDatasetLayers: loadDatasetLayers
  });
})();
