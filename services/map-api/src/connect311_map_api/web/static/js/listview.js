/* The list equivalent of the map (issue 16): the requests the map has loaded for its view, as
   a list a keyboard or a screen reader can use (kind, address, status in words, date, a link
   to track it, a button to show it on the map). It is fed by the map itself (the `onView`
   option of createRequestMap), so it follows the view and the filters with no query of its own.
   Zoomed out, the map shows groups: the list then offers each group as a "zoom in here" button. */
(function () {
  "use strict";
  var C = window.C311;
  var LIST_MAX = 100; // the newest ones; more is a wall of text, not a list

  function newestFirst(a, b) {
    var ta = Date.parse((a.properties || {}).requested_datetime || "") || 0;
    var tb = Date.parse((b.properties || {}).requested_datetime || "") || 0;
    return tb - ta;
  }

  function requestItem(feature, onShow) {
    var p = feature.properties || {};
    var id = p.service_request_id || "";
    var kind = p.service_name || p.service_code || "Service request";
    return C.el("li", { className: "request-item", "data-request-id": id }, [
      C.el("h3", { className: "request-item-title" }, [
        C.el("a", { href: "/requests/" + encodeURIComponent(id), text: kind })
      ]),
      C.el("p", { className: "request-item-meta" }, [
        C.statusBadge(p.status),
        p.address ? " " + p.address : null
      ]),
      p.requested_datetime
        ? C.el("p", { className: "request-item-date" }, [
            "Reported ",
            C.el("time", { datetime: p.requested_datetime, text: C.formatDate(p.requested_datetime) })
          ])
        : null,
      C.el("button", {
        type: "button",
        className: "link",
        text: "Show on the map",
        "aria-label": "Show " + kind + (p.address ? " at " + p.address : "") + " on the map",
        onclick: function () { onShow(feature); }
      })
    ]);
  }

  function groupItem(cell, onZoom) {
    var count = Number(cell.count) || 0;
    var parts = Object.keys(cell.byStatus || {}).map(function (s) {
      return cell.byStatus[s] + " " + C.statusLabel(s).toLowerCase();
    });
    return C.el("li", { className: "request-item" }, [
      C.el("button", {
        type: "button",
        className: "secondary",
        text: "Zoom in to " + count + " request" + (count === 1 ? "" : "s") + (parts.length ? " (" + parts.join(", ") + ")" : ""),
        onclick: function () { onZoom(cell); }
      })
    ]);
  }

  /**
   * The list in `section` (it holds #request-list-summary and #request-list).
   * handlers: {show(feature): open it on the map, zoom(cell): zoom to a group}
   */
  function setupRequestList(section, handlers) {
    var summary = section.querySelector("[data-list-summary]");
    var list = section.querySelector("[data-list]");

    function update(view) {
      C.clear(list);
      if (view.mode === "grid") {
        var cells = (view.cells || []).slice().sort(function (a, b) { return (b.count || 0) - (a.count || 0); });
        summary.textContent = cells.length
          ? "Zoomed out, the requests are grouped. Zoom in to a group to list its requests:"
          : "No requests in this view.";
        cells.slice(0, LIST_MAX).forEach(function (cell) { list.appendChild(groupItem(cell, handlers.zoom)); });
        return;
      }
      var features = (view.features || []).slice().sort(newestFirst);
      if (!features.length) summary.textContent = "No requests in this view.";
      else if (features.length > LIST_MAX) {
        summary.textContent = "The " + LIST_MAX + " newest of " + features.length +
          " requests in view. Zoom in or filter to list the others.";
      } else {
        summary.textContent = features.length + " request" + (features.length === 1 ? "" : "s") + " in view, newest first.";
      }
      features.slice(0, LIST_MAX).forEach(function (f) { list.appendChild(requestItem(f, handlers.show)); });
    }

    return { update: update };
  }

  window.C311.setupRequestList = setupRequestList;
})();
