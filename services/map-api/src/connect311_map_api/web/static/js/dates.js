/* Times in the page's words (common.js first): a timestamp in the city's time zone, a
   request's reported/updated/closed rows, a duration, and the filters' day inputs as the
   API's UTC datetimes. */
(function () {
  "use strict";
  var C = window.C311;
  var _ = C._, _n = C._n, config = C.config;
  var LOCALE = C.locale;

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

  Object.assign(window.C311, {
    formatDate: formatDate,
    formatDuration: formatDuration,
    timeRows: timeRows,
    dayStart: dayStart,
    dayEnd: dayEnd
  });
})();
