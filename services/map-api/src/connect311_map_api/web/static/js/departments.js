/* The department view: /api/stats/departments as two tables, the CSV link and the widget
   snippet for the same filters. The filters live in the page's own URL (a plain GET form),
   so a view can be bookmarked and sent; feed text only ever reaches the page as text. */
(function () {
  "use strict";
  var C = window.C311;
  var _ = C._;
  var _n = C._n;
  var form = document.getElementById("dept-filters");
  var message = document.getElementById("dept-message");
  var params = new URLSearchParams(window.location.search);
  var filters = {
    period: params.get("period") || "30d",
    agency: params.get("agency") || "",
    dataset: params.get("dataset") || ""
  };
  var NONE = "\u2013"; // an en dash: no value

  function count(n) { return n === null || n === undefined ? NONE : String(n); }
  function duration(s) { return s === null || s === undefined ? NONE : C.formatDuration(s); }
  function points(p) {
    if (p === null || p === undefined) return NONE;
    return _("%(value)s pts", { value: (p > 0 ? "+" : "") + p.toFixed(1) });
  }

  /** "83.3% (10 of 12)": the share and what it is a share of; a dash without targets. */
  function share(row) {
    if (row.share_within_target_pct === null) return [NONE];
    return [
      row.share_within_target_pct.toFixed(1) + "% ",
      C.el("span", {
        className: "share-of",
        text: _("(%(within)s of %(total)s)", { within: row.closed_within_target, total: row.closed_with_target })
      })
    ];
  }

  function cell(content, className) {
    return C.el("td", { className: className || null }, Array.isArray(content) ? content : [content]);
  }

  /** A department's name; the all-departments row in the page's language. */
  function name(row, view) { return row === view.total ? _("All departments") : row.agency; }

  function compareRow(row, view) {
    var change = row.share_change_pts;
    var trend = change === null ? null : change > 0 ? "trend-up" : change < 0 ? "trend-down" : null;
    return C.el("tr", {}, [
      cell(row.rank === undefined || row.rank === null ? "" : String(row.rank)),
      C.el("th", { scope: "row", text: name(row, view) }),
      cell(count(row.opened)),
      cell(count(row.closed)),
      cell(share(row)),
      cell(points(change), trend),
      cell(duration(row.median_close_seconds)),
      cell(duration(row.p90_close_seconds)),
      cell(duration(row.previous.median_close_seconds))
    ]);
  }

  function backlogRow(row, view) {
    return C.el("tr", {}, [
      C.el("th", { scope: "row", text: name(row, view) }),
      cell(count(row.open)),
      cell(count(row.age_0_7)),
      cell(count(row.age_8_30)),
      cell(count(row.age_31_90)),
      cell(count(row.age_over_90)),
      cell(count(row.overdue)),
      cell(count(row.dated_in_future))
    ]);
  }

  function fill(tableId, view, makeRow) {
    var table = document.getElementById(tableId);
    var body = C.clear(table.querySelector("tbody"));
    var foot = C.clear(table.querySelector("tfoot"));
    var rows = view.departments;
    rows.forEach(function (row) { body.appendChild(makeRow(row, view)); });
    if (!rows.length) {
      var columns = table.querySelectorAll("thead th").length;
      body.appendChild(C.el("tr", {}, [C.el("td", { colspan: String(columns), text: _("No requests match these filters.") })]));
      return;
    }
    foot.appendChild(makeRow(view.total, view));
  }

  function renderWhen(view) {
    var p = view.period;
    // The period's name as the form words it (translated there), else the API's.
    var option = form.querySelector('option[value="' + CSS.escape(p.name) + '"]');
    // One literal per message (the catalog test reads them as written).
    document.getElementById("dept-when").textContent = _(
      "%(period)s: %(start)s to %(end)s, compared with %(previous)s to %(start)s. Backlog and overdue as of %(as_of)s.",
      {
        period: option && option.textContent !== p.name ? option.textContent : p.label,
        start: C.formatDate(p.start),
        end: C.formatDate(p.end),
        previous: C.formatDate(p.previous_start),
        as_of: C.formatDate(view.as_of)
      }
    );
  }

  function renderDue(view) {
    var d = view.due_dates;
    var parts = [
      _("Due dates of the requests counted above: %(feed)s from the city's feed, %(levels)s from the service levels set here, %(none)s without a target (left out of the share closed within target).",
        { feed: d.feed, levels: d.service_level, none: d.no_target })
    ];
    if (!view.service_levels.configured) parts.push(_("No service levels are set, so only the feed's own due dates count."));
    if (d.feed_date_ignored) {
      parts.push(_n("%(count)s due date from the feed was earlier than its request and was not used.",
        "%(count)s due dates from the feed were earlier than their requests and were not used.", d.feed_date_ignored));
    }
    if (d.closed_without_date) {
      parts.push(_n("%(count)s closed request has no close time: counted as opened, not as closed.",
        "%(count)s closed requests have no close time: counted as opened, not as closed.", d.closed_without_date));
    }
    document.getElementById("dept-due").textContent = parts.join(" ");
  }

  function renderLinks() {
    var query = C.query(filters);
    document.getElementById("dept-csv").setAttribute("href", "/api/stats/departments.csv" + query);
    var src = window.location.origin + "/embed/stats" + query;
    document.getElementById("dept-snippet").value =
      '<iframe src="' + src + '" title="' + _("311 requests: opened and resolved") +
      '" width="340" height="260" style="border:0"></iframe>';
  }

  function render(view) {
    fill("dept-compare", view, compareRow);
    fill("dept-backlog", view, backlogRow);
    renderWhen(view);
    renderDue(view);
  }

  function load() {
    renderLinks();
    C.fetchJSON("/api/stats/departments" + C.query(filters))
      .then(function (view) { render(view); message.textContent = ""; })
      .catch(function (err) {
        message.textContent = _("Could not load the numbers: %(reason)s", { reason: err.message });
        message.classList.add("error");
      });
  }

  if (!form.querySelector('option[value="' + CSS.escape(filters.period) + '"]')) {
    form.elements.period.appendChild(C.el("option", { value: filters.period, text: filters.period }));
  }
  form.elements.period.value = filters.period;
  C.loadAgencies().then(function (items) { C.fillSelect(form.elements.agency, items, filters.agency); }).catch(function () {});
  C.loadDatasets().then(function (items) { C.fillSelect(form.elements.dataset, items, filters.dataset); }).catch(function () {});
  load();
})();
