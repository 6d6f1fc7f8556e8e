/* A request's status in the page's words (common.js and dates.js first): its label and
   badge, the resident wording of why and how (`status_text`), and its timeline. */
(function () {
  "use strict";
  var C = window.C311;
  var _ = C._, el = C.el, clear = C.clear, formatDate = C.formatDate;

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

  /** A known status, or "unknown" (used in class names, so never raw feed text). */
  function safeStatus(status) {
    return Object.prototype.hasOwnProperty.call(STATUS_LABELS, status) ? status : "unknown";
  }

  function statusLabel(status) {
    return STATUS_LABELS[safeStatus(status)] || _("Unknown");
  }

  /** A coloured status badge. */
  function statusBadge(status) {
    return el("span", { className: "badge status-" + safeStatus(status), text: statusLabel(status) });
  }

  /** The API's resident wording (`status_text`, in English) in the page's language: the
      phrase again from the status and `closed_reason`, the city's own word (the API already
      kept only a word that looks like a status) as the city wrote it. */
  function localStatusText(status, statusText, closedReason) {
    if (C.lang === "en" || !statusText) return statusText; // C.lang: I18N.lang or "en"
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

  Object.assign(window.C311, {
    STATUS_LABELS: STATUS_LABELS,
    safeStatus: safeStatus,
    statusLabel: statusLabel,
    statusBadge: statusBadge,
    statusLine: statusLine,
    renderTimeline: renderTimeline
  });
})();
