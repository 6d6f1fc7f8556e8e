/* Connect311 shared helpers. Feed text is untrusted: it only ever reaches the page through
   textContent or attribute setters, never through innerHTML. */
(function () {
  "use strict";

  /* The page's language (issue 16): its strings come from the gettext catalog as JSON in the
     page (#c311-i18n, web/i18n.py). `_(msgid, {name: value})` and `_n(one, many, n)` look
     them up; English, the source text, is the fallback for anything missing. */
  var I18N = (function () {
    var node = document.getElementById("c311-i18n");
    try { return (node && JSON.parse(node.textContent)) || {}; } catch (e) { return {}; }
  })();
  var MESSAGES = I18N.messages || {};
  var LOCALE = I18N.locale || "en-US";
  var numberFormat = null;

  /** A number as the page's language writes it (1,234.5 in en-US and es-US). */
  function formatNumber(n) {
    try {
      numberFormat = numberFormat || new Intl.NumberFormat(LOCALE, { maximumFractionDigits: 1 });
      return numberFormat.format(n);
    } catch (e) {
      return String(n);
    }
  }

  /** Fill `%(name)s` placeholders from `values`; an unknown name stays as written. */
  function interpolate(text, values) {
    if (!values) return text;
    return text.replace(/%\((\w+)\)s/g, function (whole, name) {
      return Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : whole;
    });
  }

  /** A string in the page's language. */
  function _(msgid, values) {
    var found = MESSAGES[msgid];
    return interpolate(typeof found === "string" && found ? found : msgid, values);
  }

  /** The singular or plural form for `n`; `%(count)s` is n in the page's number format.
      (English and Spanish have one form for 1 and another for the rest.) */
  function _n(singular, plural, n, values) {
    var forms = MESSAGES[singular];
    var index = n === 1 ? 0 : 1;
    var text = Array.isArray(forms) && forms[index] ? forms[index] : (index ? plural : singular);
    return interpolate(text, Object.assign({ count: formatNumber(n) }, values));
  }

  var STATUS_LABELS = {
    open: _("Open"),
    acknowledged: _("Acknowledged"),
    in_progress: _("In progress"),
    closed: _("Closed")
  };
  // Why a request was closed (the API's closed_reason), as connect311_contracts.status_words.
  var REASON_WORDS = {
    fixed: _("completed"),
    duplicate: _("duplicate of another request"),
    cancelled: _("cancelled"),
    referred: _("referred to another agency")
  };
  var CITY_STATUS = "(city status: ";
  // Timeline entries name the change (request.updated -> "updated").
  var CHANGE_WORDS = {
    opened: _("opened"),
    updated: _("updated"),
    closed: _("closed"),
    reopened: _("reopened")
  };

  /** The page's configuration from its JSON data block. */
  function config() {
    var node = document.getElementById("c311-config");
    return node ? JSON.parse(node.textContent) : {};
  }

  /** Create an element; `text` is set as text, never parsed as HTML. */
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      var value = attrs[key];
      if (value === null || value === undefined || value === false) return;
      if (key === "text") node.textContent = String(value);
      else if (key === "className") node.className = value;
      else if (key.slice(0, 2) === "on" && typeof value === "function") {
        node.addEventListener(key.slice(2), value);
      } else node.setAttribute(key, value === true ? "" : String(value));
    });
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) return;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  /** Remove every child of a node. */
  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  /** A known status, or "unknown" (used in class names, so never raw feed text). */
  function safeStatus(status) {
    return Object.prototype.hasOwnProperty.call(STATUS_LABELS, status) ? status : "unknown";
  }

  function statusLabel(status) {
    return STATUS_LABELS[safeStatus(status)] || _("Unknown");
  }

  /** An API error body as one readable sentence. */
  function errorText(body, response) {
    if (body && typeof body.detail === "string") return body.detail;
    if (body && Array.isArray(body.detail)) {
      return body.detail
        .map(function (d) {
          var where = Array.isArray(d.loc) ? d.loc.filter(function (p) { return p !== "body"; }).join(".") : "";
          return (where ? where + ": " : "") + (d.msg || "invalid");
        })
        .join("; ");
    }
    if (body && typeof body.message === "string") return body.message;
    return _("The server answered %(status)s %(text)s", { status: response.status, text: response.statusText || "" });
  }

  /** Fetch JSON; rejects with an Error whose message is readable and `status` set. */
  function fetchJSON(url, options) {
    var opts = Object.assign({ headers: { Accept: "application/json" } }, options || {});
    if (opts.json !== undefined) {
      opts.method = opts.method || "POST";
      opts.headers = Object.assign({ "Content-Type": "application/json" }, opts.headers);
      opts.body = JSON.stringify(opts.json);
      delete opts.json;
    }
    return fetch(url, opts).then(function (response) {
      return response.text().then(function (text) {
        var body = null;
        try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
        if (!response.ok) {
          var err = new Error(errorText(body, response));
          err.status = response.status;
          err.retryAfter = response.headers.get("Retry-After"); // seconds, on 429 and 503
          throw err;
        }
        return body;
      });
    });
  }

  /** A query string from an object, skipping empty values. */
  function query(params) {
    var parts = [];
    Object.keys(params).forEach(function (key) {
      var value = params[key];
      if (value === null || value === undefined || value === "") return;
      parts.push(encodeURIComponent(key) + "=" + encodeURIComponent(value));
    });
    return parts.length ? "?" + parts.join("&") : "";
  }

  /** The city's time zone (the page's `timeZone`), or undefined for the reader's own. */
  function cityZone() {
    var zone = config().timeZone;
    try {
      if (zone) new Intl.DateTimeFormat(LOCALE, { timeZone: zone });
      return zone || undefined;
    } catch (e) {
      return undefined; // an unknown zone: the reader's clock, still labelled with its zone
    }
  }

  var dateFormat = null;

  /** A timestamp in the city's time zone, with the zone named ("Feb 28, 2023, 3:04 PM EST";
      in Spanish "28 feb 2023, 3:04 p.m. EST"), as the city's emails show it. */
  function formatDate(value) {
    if (!value) return "";
    var date = new Date(value);
    if (isNaN(date.getTime())) return String(value);
    dateFormat = dateFormat || new Intl.DateTimeFormat(LOCALE, {
      year: "numeric", month: "short", day: "numeric", hour: "numeric", minute: "2-digit",
      timeZone: cityZone(), timeZoneName: "short"
    });
    return dateFormat.format(date);
  }

  /** Append a request's times to a <dl> in the order they happen: reported, updated, closed.
      An "updated" time no later than the report (or equal to the close) says nothing more. */
  function timeRows(dl, props, row) {
    var reported = props.requested_datetime, updated = props.updated_datetime, closed = props.closed_datetime;
    row(dl, _("Reported"), formatDate(reported));
    var t = function (v) { return v ? new Date(v).getTime() : NaN; };
    if (updated && !(t(updated) <= t(reported)) && t(updated) !== t(closed)) row(dl, _("Last updated"), formatDate(updated));
    if (closed) row(dl, _("Closed"), formatDate(closed));
  }

  /** A duration in seconds in real units: minutes under an hour, hours under two days, then
      days ("25 min", "5.2 hours", "3.3 days"); never a sub-minute time shown as "0 min". */
  function formatDuration(seconds) {
    if (seconds === null || seconds === undefined || isNaN(seconds)) return "–";
    if (seconds <= 0) return _("%(count)s min", { count: 0 });
    if (seconds < 60) return _("under 1 min");
    var hours = seconds / 3600;
    if (hours < 1) return _("%(count)s min", { count: Math.floor(seconds / 60) });
    if (hours < 48) return _n("%(count)s hour", "%(count)s hours", Math.round(hours * 10) / 10);
    return _n("%(count)s day", "%(count)s days", Math.round((hours / 24) * 10) / 10);
  }

  /** A coloured status badge. */
  function statusBadge(status) {
    return el("span", { className: "badge status-" + safeStatus(status), text: statusLabel(status) });
  }

  /** The API's resident wording (`status_text`, in English) in the page's language: the
      phrase again from the status and `closed_reason`, the city's own word (the API already
      kept only a word that looks like a status) as the city wrote it. */
  function localStatusText(status, statusText, closedReason) {
    if (I18N.lang === "en" || !I18N.lang || !statusText) return statusText;
    var text = statusLabel(status);
    if (status === "closed" && REASON_WORDS[closedReason]) text += " — " + REASON_WORDS[closedReason];
    var at = statusText.lastIndexOf(CITY_STATUS);
    if (at >= 0 && statusText.slice(-1) === ")") {
      text += " " + _("(city status: %(word)s)", { word: statusText.slice(at + CITY_STATUS.length, -1) });
    }
    return text;
  }

  /** Fill a node with a status badge and, when the API gave more than the badge says, the
      resident wording of why and how ("Closed — duplicate of another request", with the
      city's own status word). The wording is the API's `status_text`, set as text. */
  function statusLine(node, status, statusText, closedReason) {
    var label = statusLabel(status);
    statusText = localStatusText(status, statusText, closedReason);
    clear(node).appendChild(statusBadge(status));
    if (statusText && statusText !== label) {
      // The badge already says "Closed": the text goes on from it ("— duplicate of ...").
      var rest = statusText.indexOf(label) === 0 ? statusText.slice(label.length) : " " + statusText;
      node.appendChild(el("span", { className: "status-text", text: rest }));
    }
    return node;
  }

  /** Fill a list with a request's timeline (oldest first). */
  function renderTimeline(list, timeline) {
    clear(list);
    if (!timeline || !timeline.length) {
      list.appendChild(el("li", { className: "muted", text: _("No changes recorded yet.") }));
      return;
    }
    timeline.forEach(function (entry) {
      var kind = (entry.event_type || "").replace(/^request\./, "");
      list.appendChild(
        el("li", { className: "timeline-entry" }, [
          // The city's time for the change (as Reported/Closed are), not when we ingested it.
          el("time", { datetime: entry.source_at || entry.occurred_at, text: formatDate(entry.source_at || entry.occurred_at) }),
          " ",
          entry.status ? statusBadge(entry.status) : null,
          kind && kind !== (entry.status || "") ? el("span", { className: "event-kind", text: " " + (CHANGE_WORDS[kind] || kind) + " " }) : null,
          entry.status_notes ? el("p", { className: "notes", text: entry.status_notes }) : null
        ])
      );
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

  /** Day-precision inputs as the API's UTC datetimes (the end day is included). */
  function dayStart(value) {
    return value ? value + "T00:00:00Z" : "";
  }
  function dayEnd(value) {
    if (!value) return "";
    var date = new Date(value + "T00:00:00Z");
    date.setUTCDate(date.getUTCDate() + 1);
    return date.toISOString().replace(/\.\d{3}Z$/, "Z");
  }

  window.C311 = {
    _: _,
    _n: _n,
    lang: I18N.lang || "en",
    locale: LOCALE,
    formatNumber: formatNumber,
    STATUS_LABELS: STATUS_LABELS,
    config: config,
    el: el,
    clear: clear,
    safeStatus: safeStatus,
    statusLabel: statusLabel,
    statusBadge: statusBadge,
    statusLine: statusLine,
    fetchJSON: fetchJSON,
    query: query,
    formatDate: formatDate,
    formatDuration: formatDuration,
    timeRows: timeRows,
    renderTimeline: renderTimeline,
    fillSelect: fillSelect,
    loadCategories: loadCategories,
    loadAgencies: loadAgencies,
    loadDatasets: loadDatasets,
    datasetInfo: datasetInfo,
    datasetCounts: datasetCounts,
    otherDatasets: otherDatasets,
    datasetSymbol: datasetSymbol,
    loadDatasetLayers: loadDatasetLayers,
    dayStart: dayStart,
    dayEnd: dayEnd
  };
})();
