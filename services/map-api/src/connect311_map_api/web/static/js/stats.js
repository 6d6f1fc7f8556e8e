/* The statistics page: /api/stats as charts (opened vs resolved, time to close) and a table. */
(function () {
  "use strict";
  var C = window.C311;
  var _ = C._, _n = C._n;
  var Charts = window.C311Charts;
  var form = document.getElementById("stats-filters");
  var message = document.getElementById("stats-message");
  var OPENED = { name: _("Opened"), className: "series-opened" };
  var RESOLVED = { name: _("Resolved"), className: "series-resolved" };
  var PER = { day: _("Requests opened and resolved per day"), week: _("Requests opened and resolved per week"), month: _("Requests opened and resolved per month") };

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
      title: _("Requests opened and resolved per department"),
      labels: agencies,
      series: [
        Object.assign({ values: agencies.map(function (a) { return totals.byAgency[a].opened; }) }, OPENED),
        Object.assign({ values: agencies.map(function (a) { return totals.byAgency[a].resolved; }) }, RESOLVED)
      ]
    });
    var periods = Object.keys(totals.byPeriod).sort();
    Charts.periodBars(document.getElementById("chart-period"), {
      title: PER[body.interval] || _("Requests opened and resolved per period"),
      labels: periods,
      series: [
        Object.assign({ values: periods.map(function (p) { return totals.byPeriod[p].opened; }) }, OPENED),
        Object.assign({ values: periods.map(function (p) { return totals.byPeriod[p].resolved; }) }, RESOLVED)
      ]
    });
    var ttc = (body.time_to_close || []).slice().sort(function (a, b) { return (b.median_seconds || 0) - (a.median_seconds || 0); });
    Charts.horizontalBars(document.getElementById("chart-close"), {
      title: _("Median and 90th percentile time to close per department"),
      labels: ttc.map(function (t) { return t.agency; }),
      format: duration,
      series: [
        { name: _("Median"), className: "series-median", values: ttc.map(function (t) { return t.median_seconds; }) },
        { name: _("90th percentile"), className: "series-p90", values: ttc.map(function (t) { return t.p90_seconds; }) }
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
        C.el("td", { text: C.formatNumber(t.opened) }),
        C.el("td", { text: C.formatNumber(t.resolved) }),
        C.el("td", { text: b.open === undefined ? "0" : C.formatNumber(b.open) }),
        C.el("td", { text: duration(b.median_age_seconds) }),
        C.el("td", { text: duration(c.median_seconds) }),
        C.el("td", { text: duration(c.p90_seconds) })
      ]));
    });
    if (!names.length) tbody.appendChild(C.el("tr", {}, [C.el("td", { colspan: "7", text: _("No requests match these filters.") })]));
  }

  /** When the ages were measured, in the city's zone, and any requests dated in the future. */
  function renderAsOf(body) {
    var note = document.getElementById("stats-as-of");
    if (!note) return;
    var ahead = (body.backlog || []).reduce(function (n, b) { return n + (b.dated_in_future || 0); }, 0);
    var text = body.as_of ? _("Backlog ages as of %(date)s.", { date: C.formatDate(body.as_of) }) : "";
    if (ahead) {
      text += " " + _n("%(count)s open request is dated later than that (the feed's clock runs ahead): counted as open, left out of the ages.",
        "%(count)s open requests are dated later than that (the feed's clock runs ahead): counted as open, left out of the ages.", ahead);
    }
    note.textContent = text;
  }

  var INCIDENTS = { name: _("Records"), className: "series-incidents" };

  /** The lifecycle sections (opened vs resolved, time to close, their table) or the
      breakdown by type and time: a dataset with no status (crime) has no lifecycle. */
  function showLifecycle(yes) {
    ["chart-agency", "chart-period", "chart-close", "stats-table"].forEach(function (id) {
      var section = document.getElementById(id).closest("section");
      if (section) section.hidden = !yes;
    });
    document.getElementById("breakdown").hidden = yes;
  }

  /** Counts by type, weekday, hour and day (/api/stats/breakdown), in the city's zone. */
  function renderBreakdown(body, info) {
    var item = info.items || info.item;
    var series = Object.assign({}, INCIDENTS, { name: item.charAt(0).toUpperCase() + item.slice(1) });
    document.getElementById("breakdown-note").textContent = _(
      "%(items)s have no status: %(count)s of them are counted by type and by the time they happened (%(zone)s), not opened vs resolved.",
      { items: item.charAt(0).toUpperCase() + item.slice(1), count: C.formatNumber ? C.formatNumber(body.total) : body.total, zone: body.time_zone }
    );
    var types = (body.by_type || []).slice();
    if (body.other_types) types.push({ type: _("Other types (%(n)s)", { n: body.type_count - types.length }), count: body.other_types });
    Charts.horizontalBars(document.getElementById("chart-type"), {
      title: _("Records per type"),
      labels: types.map(function (t) { return t.type; }),
      series: [Object.assign({ values: types.map(function (t) { return t.count; }) }, series)]
    });
    var bars = [
      ["chart-weekday", body.by_weekday || [], function (d) { return d.day; }, _("Records per day of the week")],
      ["chart-hour", body.by_hour || [], function (d) { return (d.hour < 10 ? "0" : "") + d.hour + ":00"; }, _("Records per hour of the day")],
      ["chart-day", body.per_day || [], function (d) { return d.day; }, _("Records per day")]
    ];
    bars.forEach(function (b) {
      Charts.periodBars(document.getElementById(b[0]), {
        title: b[3],
        labels: b[1].map(b[2]),
        series: [Object.assign({ values: b[1].map(function (d) { return d.count; }) }, series)]
      });
    });
  }

  function load() {
    message.className = "message";
    message.textContent = _("Loading statistics…");
    var params = {
      interval: form.elements.interval.value,
      agency: form.elements.agency.value,
      service_code: form.elements.service_code.value,
      dataset: form.elements.dataset.value,
      since: C.dayStart(form.elements.since.value),
      until: C.dayEnd(form.elements.until.value)
    };
    var info = params.dataset ? C.datasetInfo(params.dataset) : null;
    showLifecycle(!info || info.hasStatus);
    if (info && !info.hasStatus) {
      delete params.interval;
      C.fetchJSON("/api/stats/breakdown" + C.query(params))
        .then(function (body) { renderBreakdown(body || {}, info); message.textContent = ""; })
        .catch(function (err) {
          message.textContent = _("Could not load statistics: %(reason)s", { reason: err.message });
          message.classList.add("error");
        });
      return;
    }
    C.fetchJSON("/api/stats" + C.query(params))
      .then(function (body) { render(body || {}); message.textContent = ""; })
      .catch(function (err) {
        message.textContent = _("Could not load statistics: %(reason)s", { reason: err.message });
        message.classList.add("error");
      });
  }

  form.addEventListener("submit", function (e) { e.preventDefault(); load(); });
  C.loadAgencies().then(function (items) { C.fillSelect(form.elements.agency, items); }).catch(function () {});
  C.loadCategories().then(function (items) { C.fillSelect(form.elements.service_code, items); }).catch(function () {});
  // `?dataset=crime` opens the page on that dataset's statistics.
  var askedDataset = new URLSearchParams(window.location.search).get("dataset") || "";
  C.loadDatasets().then(function (items) {
    C.fillSelect(form.elements.dataset, items, askedDataset);
    if (askedDataset && form.elements.dataset.value === askedDataset) load();
  }).catch(function () {});
  load();
})();
