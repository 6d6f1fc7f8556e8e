/* Connect311 shared helpers. Feed text is untrusted: it only ever reaches the page through
   textContent or attribute setters, never through innerHTML. */
(function () {
  "use strict";

  var STATUS_LABELS = {
    open: "Open",
    acknowledged: "Acknowledged",
    in_progress: "In progress",
    closed: "Closed"
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
    return STATUS_LABELS[safeStatus(status)] || "Unknown";
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
    return "The server answered " + response.status + " " + (response.statusText || "");
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
      if (zone) new Intl.DateTimeFormat("en-US", { timeZone: zone });
      return zone || undefined;
    } catch (e) {
      return undefined; // an unknown zone: the reader's clock, still labelled with its zone
    }
  }

  var dateFormat = null;

  /** A timestamp in the city's time zone, with the zone named ("Feb 28, 2023, 3:04 PM EST"),
      as the city's emails show it. */
  function formatDate(value) {
    if (!value) return "";
    var date = new Date(value);
    if (isNaN(date.getTime())) return String(value);
    dateFormat = dateFormat || new Intl.DateTimeFormat("en-US", {
      year: "numeric", month: "short", day: "numeric", hour: "numeric", minute: "2-digit",
      timeZone: cityZone(), timeZoneName: "short"
    });
    return dateFormat.format(date);
  }

  /** Append a request's times to a <dl> in the order they happen: reported, updated, closed.
      An "updated" time no later than the report (or equal to the close) says nothing more. */
  function timeRows(dl, props, row) {
    var reported = props.requested_datetime, updated = props.updated_datetime, closed = props.closed_datetime;
    row(dl, "Reported", formatDate(reported));
    var t = function (v) { return v ? new Date(v).getTime() : NaN; };
    if (updated && !(t(updated) <= t(reported)) && t(updated) !== t(closed)) row(dl, "Last updated", formatDate(updated));
    if (closed) row(dl, "Closed", formatDate(closed));
  }

  /** A duration in seconds in real units: minutes under an hour, hours under two days, then
      days ("25 min", "5.2 hours", "3.3 days"); never a sub-minute time shown as "0 min". */
  function formatDuration(seconds) {
    if (seconds === null || seconds === undefined || isNaN(seconds)) return "–";
    if (seconds <= 0) return "0 min";
    if (seconds < 60) return "under 1 min";
    var hours = seconds / 3600;
    if (hours < 1) return Math.floor(seconds / 60) + " min";
    var value = hours < 48 ? Math.round(hours * 10) / 10 : Math.round((hours / 24) * 10) / 10;
    var unit = hours < 48 ? "hour" : "day";
    return value + " " + unit + (value === 1 ? "" : "s");
  }

  /** A coloured status badge. */
  function statusBadge(status) {
    return el("span", { className: "badge status-" + safeStatus(status), text: statusLabel(status) });
  }

  /** Fill a node with a status badge and, when the API gave more than the badge says, the
      resident wording of why and how ("Closed — duplicate of another request", with the
      city's own status word). The wording is the API's `status_text`, set as text. */
  function statusLine(node, status, statusText) {
    var label = statusLabel(status);
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
      list.appendChild(el("li", { className: "muted", text: "No changes recorded yet." }));
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
          kind && kind !== (entry.status || "") ? el("span", { className: "event-kind", text: " " + kind + " " }) : null,
          entry.status_notes ? el("p", { className: "notes", text: entry.status_notes }) : null
        ])
      );
    });
  }

  /** Fill a <select> with options from [{value,label}], keeping its first (empty) option. */
  function fillSelect(select, items, selected) {
    while (select.options.length > 1) select.remove(1);
    items.forEach(function (item) {
      var option = el("option", { value: item.value, text: item.label });
      if (selected && selected === item.value) option.selected = true;
      select.appendChild(option);
    });
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
      if (typeof item.count === "number") label += " (" + item.count + ")";
      return { value: value, label: label };
    }).filter(function (item) { return item.value !== ""; });
  }

  function loadCategories() {
    return fetchJSON("/api/categories").then(function (body) {
      return toItems(body, ["service_code", "code", "value"], ["service_name", "name", "label", "service_code"]);
    });
  }

  function loadAgencies() {
    return fetchJSON("/api/agencies").then(function (body) {
      return toItems(body, ["agency_responsible", "agency", "name", "value"], ["agency_responsible", "agency", "name", "label"]);
    });
  }

  function loadDatasets() {
    return fetchJSON("/api/datasets").then(function (body) {
      return toItems(body, ["dataset", "name", "value"], ["dataset", "name", "label"]);
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
    dayStart: dayStart,
    dayEnd: dayEnd
  };
})();
