/* The statistics page: /api/stats as charts (opened vs resolved, time to close) and a table. */
(function () {
  "use strict";
  var C = window.C311;
  var Charts = window.C311Charts;
  var form = document.getElementById("stats-filters");
  var message = document.getElementById("stats-message");
  var OPENED = { name: "Opened", className: "series-opened" };
  var RESOLVED = { name: "Resolved", className: "series-resolved" };

  // The API gives every duration in seconds; the page words them in real units.
  function duration(s) { return s === null || s === undefined ? "–" : C.formatDuration(s); }

  /** Per-agency totals and per-period totals from the API's per-agency-per-period rows. */
  function rollUp(series) {
    var byAgency = {}, byPeriod = {};
    (series || []).forEach(function (row) {
      var a = byAgency[row.agency] || (byAgency[row.agency] = { opened: 0, resolved: 0 });
      a.opened += row.opened || 0;
      a.resolved += row.resolved || 0;
      var p = byPeriod[row.period] || (byPeriod[row.period] = { opened: 0, resolved: 0 });
      p.opened += row.opened || 0;
      p.resolved += row.resolved || 0;
    });
    return { byAgency: byAgency, byPeriod: byPeriod };
  }

  function render(body) {
    var totals = rollUp(body.series);
    var agencies = Object.keys(totals.byAgency).sort(function (a, b) {
      return totals.byAgency[b].opened - totals.byAgency[a].opened;
    });
    Charts.horizontalBars(document.getElementById("chart-agency"), {
      title: "Requests opened and resolved per department",
      labels: agencies,
      series: [
        Object.assign({ values: agencies.map(function (a) { return totals.byAgency[a].opened; }) }, OPENED),
        Object.assign({ values: agencies.map(function (a) { return totals.byAgency[a].resolved; }) }, RESOLVED)
      ]
    });
    var periods = Object.keys(totals.byPeriod).sort();
    Charts.periodBars(document.getElementById("chart-period"), {
      title: "Requests opened and resolved per " + (body.interval || "period"),
      labels: periods,
      series: [
        Object.assign({ values: periods.map(function (p) { return totals.byPeriod[p].opened; }) }, OPENED),
        Object.assign({ values: periods.map(function (p) { return totals.byPeriod[p].resolved; }) }, RESOLVED)
      ]
    });
    var ttc = (body.time_to_close || []).slice().sort(function (a, b) { return (b.median_seconds || 0) - (a.median_seconds || 0); });
    Charts.horizontalBars(document.getElementById("chart-close"), {
      title: "Median and 90th percentile time to close per department",
      labels: ttc.map(function (t) { return t.agency; }),
      format: duration,
      series: [
        { name: "Median", className: "series-median", values: ttc.map(function (t) { return t.median_seconds; }) },
        { name: "90th percentile", className: "series-p90", values: ttc.map(function (t) { return t.p90_seconds; }) }
      ]
    });
    renderAsOf(body);
    renderTable(agencies, totals.byAgency, body.backlog || [], body.time_to_close || []);
  }

  function renderTable(agencies, totals, backlog, ttc) {
    var tbody = C.clear(document.querySelector("#stats-table tbody"));
    var back = {}, close = {};
    backlog.forEach(function (b) { back[b.agency] = b; });
    ttc.forEach(function (t) { close[t.agency] = t; });
    var names = agencies.slice();
    Object.keys(back).concat(Object.keys(close)).forEach(function (a) { if (names.indexOf(a) < 0) names.push(a); });
    names.forEach(function (a) {
      var t = totals[a] || { opened: 0, resolved: 0 }, b = back[a] || {}, c = close[a] || {};
      tbody.appendChild(C.el("tr", {}, [
        C.el("th", { scope: "row", text: a }),
        C.el("td", { text: String(t.opened) }),
        C.el("td", { text: String(t.resolved) }),
        C.el("td", { text: b.open === undefined ? "0" : String(b.open) }),
        C.el("td", { text: duration(b.median_age_seconds) }),
        C.el("td", { text: duration(c.median_seconds) }),
        C.el("td", { text: duration(c.p90_seconds) })
      ]));
    });
    if (!names.length) tbody.appendChild(C.el("tr", {}, [C.el("td", { colspan: "7", text: "No requests match these filters." })]));
  }

  /** When the ages were measured, in the city's zone, and any requests dated in the future. */
  function renderAsOf(body) {
    var note = document.getElementById("stats-as-of");
    if (!note) return;
    var ahead = (body.backlog || []).reduce(function (n, b) { return n + (b.dated_in_future || 0); }, 0);
    var text = body.as_of ? "Backlog ages as of " + C.formatDate(body.as_of) + "." : "";
    if (ahead) {
      text += " " + ahead + " open request" + (ahead === 1 ? " is" : "s are") +
        " dated later than that (the feed's clock runs ahead): counted as open, left out of the ages.";
    }
    note.textContent = text;
  }

  function load() {
    message.className = "message";
    message.textContent = "Loading statistics…";
    var params = {
      interval: form.elements.interval.value,
      agency: form.elements.agency.value,
      service_code: form.elements.service_code.value,
      dataset: form.elements.dataset.value,
      since: C.dayStart(form.elements.since.value),
      until: C.dayEnd(form.elements.until.value)
    };
    C.fetchJSON("/api/stats" + C.query(params))
      .then(function (body) { render(body || {}); message.textContent = ""; })
      .catch(function (err) {
        message.textContent = "Could not load statistics: " + err.message;
        message.classList.add("error");
      });
  }

  form.addEventListener("submit", function (e) { e.preventDefault(); load(); });
  C.loadAgencies().then(function (items) { C.fillSelect(form.elements.agency, items); }).catch(function () {});
  C.loadCategories().then(function (items) { C.fillSelect(form.elements.service_code, items); }).catch(function () {});
  C.loadDatasets().then(function (items) { C.fillSelect(form.elements.dataset, items); }).catch(function () {});
  load();
})();
