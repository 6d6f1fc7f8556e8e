/* The list equivalent of the map (issue 16): the requests the map has loaded for its view, as
   a list a keyboard or a screen reader can use (kind, address, status in words, date, a link
   to track it, a button to show it on the map). It is fed by the map itself (the `onView`
   option of createRequestMap), so it follows the view and the filters with no query of its own.
   Zoomed out, the map shows groups: the list then offers each group as a "zoom in here" button. */
(function () {
  "use strict";
  var C = window.C311;
  var _ = C._, _n = C._n;
  var LIST_MAX = 100; // the newest ones; more is a wall of text, not a list

  function newestFirst(a, b) {
    var ta = Date.parse((a.properties || {}).requested_datetime || "") || 0;
    var tb = Date.parse((b.properties || {}).requested_datetime || "") || 0;
    return tb - ta;
  }

  function requestItem(feature, onShow) {
    var p = feature.properties || {};
    var id = p.service_request_id || "";
    var info = C.datasetInfo(p.dataset);
    var item = info.item.charAt(0).toUpperCase() + info.item.slice(1);
    var kind = p.service_name || p.service_code || (info.dataset === "311" ? _("Service request") : item);
    return C.el("li", { className: "request-item", "data-request-id": id, "data-dataset": info.dataset }, [
      // A crime incident has no lifecycle to track: its title is not a link to the track page.
      C.el("h3", { className: "request-item-title" }, [
        info.hasStatus ? C.el("a", { href: "/requests/" + encodeURIComponent(id), text: kind }) : kind
      ]),
      C.el("p", { className: "request-item-meta" }, [
        info.hasStatus ? C.statusBadge(p.status) : null,
        // What kind of record it is, in words, beside its status (never the symbol alone).
        info.dataset !== "311" ? C.el("span", { className: "dataset-tag", text: item }) : null,
        p.address ? " " + p.address : null
      ]),
      p.requested_datetime
        ? C.el("p", { className: "request-item-date" }, [
            (info.hasStatus ? _("Reported") : _("When")) + " ",
            C.el("time", { datetime: p.requested_datetime, text: C.formatDate(p.requested_datetime) })
          ])
        : null,
      C.el("button", {
        type: "button",
        className: "link",
        text: _("Show on the map"),
        "aria-label": p.address
          ? _("Show %(kind)s at %(address)s on the map", { kind: kind, address: p.address })
          : _("Show %(kind)s on the map", { kind: kind }),
        onclick: function () { onShow(feature); }
      })
    ]);
  }

  function groupItem(cell, onZoom) {
    var count = Number(cell.count) || 0;
    // Statuses count only records with one; a group with crime names it apart (issue 17).
    var statuses = C.mapParts.statusCounts(cell);
    var what = C.otherDatasets(cell.byDataset)
      ? _("Zoom in to %(items)s", { items: C.datasetCounts(cell.byDataset) })
      : _n("Zoom in to %(count)s request", "Zoom in to %(count)s requests", count);
    return C.el("li", { className: "request-item" }, [
      C.el("button", {
        type: "button",
        className: "secondary",
        text: what + (statuses ? " (" + statuses + ")" : ""),
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
          ? _("Zoomed out, the requests are grouped. Zoom in to a group to list its requests:")
          : _("No requests in this view.");
        cells.slice(0, LIST_MAX).forEach(function (cell) { list.appendChild(groupItem(cell, handlers.zoom)); });
        return;
      }
      var features = (view.features || []).slice().sort(newestFirst);
      if (!features.length) summary.textContent = _("No requests in this view.");
      else if (features.length > LIST_MAX) {
        summary.textContent = _("The %(shown)s newest of %(total)s requests in view. Zoom in or filter to list the others.", {
          shown: C.formatNumber(LIST_MAX), total: C.formatNumber(features.length)
        });
      } else {
        var byDataset = {};
        features.forEach(function (f) { var d = (f.properties || {}).dataset; byDataset[d] = (byDataset[d] || 0) + 1; });
        summary.textContent = C.otherDatasets(byDataset)
          ? _("%(items)s in view, newest first.", { items: C.datasetCounts(byDataset) })
          : _n("%(count)s request in view, newest first.", "%(count)s requests in view, newest first.", features.length);
      }
      features.slice(0, LIST_MAX).forEach(function (f) { list.appendChild(requestItem(f, handlers.show)); });
    }

    return { update: update };
  }

  /** The list's handlers for a request map (createRequestMap; `mapOf` returns it, as the
      list is made before the map it follows): "Show on the map" opens the request's popup
      and moves the keyboard focus into it; a group's button zooms in to it. */
  function mapHandlers(mapOf, cfg) {
    return {
      show: function (feature) {
        var requestMap = mapOf();
        requestMap.map.once("popupopen", function (event) {
          var title = event.popup.getElement().querySelector(".popup-title");
          if (!title) return;
          title.setAttribute("tabindex", "-1");
          title.focus();
        });
        requestMap.focusRequest(feature);
      },
      zoom: function (cell) {
        var map = mapOf().map;
        map.setView([cell.lat, cell.long], Math.max(map.getZoom() + 2, cfg.clusterBelowZoom || 0));
      }
    };
  }

  window.C311.setupRequestList = setupRequestList;
  window.C311.listMapHandlers = mapHandlers;
})();
