/* The request map's groups (after maptiles.js): the server's grid cells as cheap markers in
   two panes that take turns, their words, and MarkerCluster's named group icon. */
(function () {
  "use strict";
  var C = window.C311;
  var _ = C._, _n = C._n;
  var VIEW_PAD = C.mapParts.VIEW_PAD;

  /** A group's statuses in words ("10 open, 2 closed"): only records with a status are
      counted there (a crime incident has none). */
  function statusCounts(cell) {
    return Object.keys(cell.byStatus || {}).filter(function (s) { return cell.byStatus[s]; }).map(function (s) {
      return C.formatNumber(cell.byStatus[s]) + " " + C.statusLabel(s).toLowerCase();
    }).join(", ");
  }

  /** What a group holds, in words: "12 requests here (10 open, 2 closed)", or per dataset
      "12 requests, 3 crime incidents here (…)" when it holds more than 311 requests. */
  function cellWords(cell) {
    var count = Number(cell.count) || 0;
    var statuses = statusCounts(cell);
    var what = C.otherDatasets(cell.byDataset)
      ? _("%(items)s here", { items: C.datasetCounts(cell.byDataset) })
      : _n("%(count)s request here", "%(count)s requests here", count);
    return what + (statuses ? " (" + statuses + ")" : "");
  }

  /** A group's marker, made cheap to draw by the hundred (issue 15):
      - it sits out a zoom's animation (hidden until it ends, as Leaflet does for markers
        without markerZoomAnimation): groups are counted afresh for each zoom, and moving
        hundreds of them made the 250 ms animation end ~150 ms late on 2 cores;
      - it is placed by left/top, not Leaflet's translate3d: a 3D transform makes each icon a
        compositing layer of its own, and hundreds of layers cost 40-200 ms per frame to
        layerize and commit. A group never moves by itself (a pan moves its pane). */
  var GroupMarker = L.Marker.extend({
    onAdd: function (map) {
      this._zoomAnimated = false;
      L.Marker.prototype.onAdd.call(this, map);
    },
    _setPos: function (pos) {
      var at = this._icon && this._icon._leaflet_pos;
      // Built while a zoom played, a group is already where the zoom's end puts it again.
      if (at && at.x === pos.x && at.y === pos.y) return;
      if (this._icon) {
        this._icon._leaflet_pos = pos; // what L.DomUtil.getPosition reads
        this._icon.style.left = pos.x + "px";
        this._icon.style.top = pos.y + "px";
      }
      this._zIndex = pos.y + this.options.zIndexOffset;
      this._resetZIndex();
    }
  });

  function cellMarker(map, cell, pane) {
    var count = Number(cell.count) || 0;
    var size = count < 100 ? 34 : count < 1000 ? 42 : 52;
    // Digits and "k" only, as the icon's own text: one element per group, not two.
    var label = count >= 10000 ? Math.round(count / 1000) + "k" : String(count);
    var title = cellWords(cell) + ". " + _("Zoom in to see them.");
    var marker = new GroupMarker([cell.lat, cell.long], {
      icon: L.divIcon({ className: "grid-cell", html: label, iconSize: [size, size] }),
      pane: pane || "markerPane",
      title: title,
      alt: title,
      keyboard: true
    });
    marker.cell = cell; // the list view offers each group too
    marker.on("click", function () { map.setView([cell.lat, cell.long], Math.min(map.getZoom() + 2, 18)); });
    return marker;
  }

  /** The groups (grid cells) in two panes that take turns: the shown one, and a hidden one
      where the next view's groups are built, e.g. while a zoom's animation plays (its tiles
      were asked as it began). Showing them is then one style change on the first frame
      after the zoom; the old pane leaves the page at once and its markers are taken out of
      Leaflet (one by one, the slow part) when the browser is idle, after that frame. A hidden
      pane's groups are neither seen, nor focusable, nor read by a screen reader. */
  function groupPanes(map) {
    var sides = [0, 1].map(function (i) {
      var name = "c311Groups" + i;
      var pane = map.createPane(name);
      pane.style.zIndex = "600"; // Leaflet's marker pane: below tooltips and popups
      return { name: name, pane: pane, layer: L.layerGroup().addTo(map), parent: pane.parentNode };
    });
    var shown = 0;
    var built = null; // the tile bodies the hidden side was built from
    var retiring = null; // the side taken off the page, not yet emptied
    var idle = null;
    sides[1].pane.style.visibility = "hidden";

    function emptyRetired() {
      if (!retiring) return;
      if (window.cancelIdleCallback && idle !== null) window.cancelIdleCallback(idle); else clearTimeout(idle);
      retiring.layer.clearLayers();
      retiring.parent.appendChild(retiring.pane);
      retiring = idle = null;
    }

    function sameBodies(a, b) {
      return Boolean(a && b) && a.length === b.length && a.every(function (body, i) { return body === b[i]; });
    }

    return {
      /** The layer group shown now. */
      shown: function () { return sides[shown].layer; },
      /** Build `cells` near `view` (L.LatLngBounds) in the hidden pane, from tile `bodies`. */
      build: function (cells, view, bodies) {
        emptyRetired();
        var side = sides[1 - shown];
        side.layer.clearLayers(); // a build that was never shown
        var near = view.pad(VIEW_PAD);
        cells.forEach(function (cell) {
          if (near.contains([cell.lat, cell.long])) side.layer.addLayer(cellMarker(map, cell, side.name));
        });
        built = bodies;
      },
      /** Show the groups built from these very bodies; false when the hidden pane holds others. */
      show: function (bodies) {
        if (!sameBodies(built, bodies)) return false;
        built = null;
        emptyRetired();
        var old = sides[shown];
        shown = 1 - shown;
        sides[shown].pane.style.visibility = "";
        old.pane.style.visibility = "hidden";
        old.parent.removeChild(old.pane);
        retiring = old;
        idle = window.requestIdleCallback ? window.requestIdleCallback(emptyRetired, { timeout: 1000 }) : setTimeout(emptyRetired, 200);
        return true;
      }
    };
  }

  /** A div icon with an accessible name: Leaflet makes a keyboard marker's icon a focusable
      button, and a button needs a name a screen reader can say (issue 16). */
  var NamedDivIcon = L.DivIcon.extend({
    createIcon: function (old) {
      var div = L.DivIcon.prototype.createIcon.call(this, old);
      if (this.options.label) {
        div.setAttribute("aria-label", this.options.label);
        div.setAttribute("title", this.options.label);
      }
      return div;
    }
  });

  /** MarkerCluster's group icon, named ("12 requests here…") instead of a bare number. */
  function clusterIcon(group) {
    var n = group.getChildCount();
    var size = n < 10 ? "small" : n < 100 ? "medium" : "large";
    return new NamedDivIcon({
      html: "<div><span aria-hidden=\"true\">" + n + "</span></div>",
      className: "marker-cluster marker-cluster-" + size,
      iconSize: L.point(40, 40),
      label: _n("%(count)s request here. Press Enter to show it.", "%(count)s requests here. Press Enter to show them.", n)
    });
  }

  window.C311.mapParts = Object.assign(window.C311.mapParts || {}, {
    cellWords: cellWords,
    clusterIcon: clusterIcon,
    groupPanes: groupPanes,
    statusCounts: statusCounts
  });
})();
