/* The request map's controls: the base-map notice, the "Show all requests" button, the
   dataset legend and the status parts, and the reader's motion preference. Loaded after
   the map's pieces (mapfilters.js, maptiles.js, tilesahead.js, mapmarkers.js,
   mapgroups.js), which add themselves to `C311.mapParts`, and before mapview.js's pieces
   and mapview.js, which assembles them into a map. The two keep their names and come last
   so that bench/map_paint.py --baseline-js with a single-file mapparts.js and mapview.js
   of before the split still times those: they replace the namespace and the map whole. */
(function () {
  "use strict";
  var C = window.C311;
  var _ = C._;

  /** Whether the reader asked their system for less motion (no zoom or fade animations). */
  function reducedMotion() {
    return Boolean(window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches);
  }

  var TILE_NOTICE = _("The base map could not load; requests are still shown.");
  var FIT_MAX_ZOOM = 16;

  /** A notice on the map when tiles fail, gone again once a round of tiles loads cleanly. */
  function watchTiles(map, tiles) {
    var notice = C.el("p", { className: "map-notice", role: "status", hidden: true, text: TILE_NOTICE });
    map.getContainer().appendChild(notice);
    var failed = 0;
    tiles.on("loading", function () { failed = 0; });
    tiles.on("tileerror", function () {
      failed += 1;
      notice.hidden = false;
      map.getContainer().setAttribute("data-tiles", "failed");
    });
    tiles.on("load", function () {
      if (failed) return;
      notice.hidden = true;
      map.getContainer().setAttribute("data-tiles", "ok");
    });
  }

  /** A "Show all requests" button on the map: fits the view to the requests' extent. */
  function fitControl(onClick) {
    var Control = L.Control.extend({
      options: { position: "topleft" },
      onAdd: function () {
        var button = C.el("button", { type: "button", className: "map-fit", text: _("Show all requests") });
        L.DomEvent.disableClickPropagation(button);
        button.addEventListener("click", onClick);
        return C.el("div", { className: "leaflet-bar map-fit-bar" }, [button]);
      }
    });
    return new Control();
  }

  /** The legend's dataset entries: each layer's shape, and whether its colour is a status.
      Shown when more than 311 requests are on the map. */
  function fillDatasetLegend(list, layers) {
    if (!list) return;
    C.clear(list);
    var names = layers.map(function (l) { return l.value; });
    list.hidden = !names.length || (names.length === 1 && names[0] === "311");
    names.forEach(function (name) {
      var info = C.datasetInfo(name);
      var item = info.item.charAt(0).toUpperCase() + info.item.slice(1);
      list.appendChild(C.el("li", {}, [
        C.el("span", { className: "legend-symbol" }, [C.datasetSymbol(name, "legend")]),
        info.hasStatus ? _("%(item)s (colour: its status)", { item: item }) : _("%(item)s (no status)", { item: item })
      ]));
    });
  }

  /** Whether any of these datasets has a status (null: not narrowed, so 311 requests too). */
  function anyStatus(datasets) {
    return !datasets || datasets.some(function (d) { return C.datasetInfo(d).hasStatus; });
  }

  /** The status legend and the status filter only where a shown layer has a status: a
      crime-only view has none to show or filter by (issue 17). */
  function showStatusParts(datasets) {
    var shown = anyStatus(datasets);
    Array.prototype.forEach.call(document.querySelectorAll("[data-status-part]"), function (node) { node.hidden = !shown; });
    return shown;
  }

  window.C311.mapParts = Object.assign(window.C311.mapParts || {}, {
    FIT_MAX_ZOOM: FIT_MAX_ZOOM,
    anyStatus: anyStatus,
    fillDatasetLegend: fillDatasetLegend,
    fitControl: fitControl,
    reducedMotion: reducedMotion,
    showStatusParts: showStatusParts,
    watchTiles: watchTiles
  });
})();
