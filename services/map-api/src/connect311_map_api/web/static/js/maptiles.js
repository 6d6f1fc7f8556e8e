/* The request map's data tiles (after mapfilters.js): which tiles cover a view (or the view
   a zoom goes to), and what their bodies hold: compact markers as features, groups as
   cells, named by the category list. */
(function () {
  "use strict";
  var C = window.C311;
  // A data tile spans 4 x 4 base-map tiles (1024 px): a full-screen view is a few requests.
  // The server sends a tile's markers from data zoom 11 (map zoom 13), its groups below that
  // or when one tile holds too many markers.
  var DATA_ZOOM_OFFSET = 2;
  var MAX_DATA_ZOOM = 20;
  var MERCATOR_MAX_LAT = 85.0511287798;

  function clamp(v, lo, hi) { return Math.max(lo, Math.min(hi, v)); }

  /** The data tiles (slippy-map numbering) covering the map's view, nearest the centre first;
      with `at` ({center, zoom}), the view the map is zooming to (asked as the zoom starts). */
  function tileUrls(map, key, at) {
    var zoom = at ? at.zoom : map.getZoom();
    var z = clamp(Math.floor(zoom) - DATA_ZOOM_OFFSET, 0, MAX_DATA_ZOOM);
    var n = Math.pow(2, z);
    var b = at ? boundsAt(map, at.center, at.zoom) : map.getBounds();
    function tx(long) { return clamp(Math.floor((clamp(long, -180, 180) + 180) / 360 * n), 0, n - 1); }
    function ty(lat) {
      var r = clamp(lat, -MERCATOR_MAX_LAT, MERCATOR_MAX_LAT) * Math.PI / 180;
      return clamp(Math.floor((1 - Math.log(Math.tan(r) + 1 / Math.cos(r)) / Math.PI) / 2 * n), 0, n - 1);
    }
    var x0 = tx(b.getWest()), x1 = tx(b.getEast()), y0 = ty(b.getNorth()), y1 = ty(b.getSouth());
    var cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
    var tiles = [];
    for (var x = x0; x <= x1; x++) for (var y = y0; y <= y1; y++) tiles.push([x, y]);
    tiles.sort(function (a, c) {
      return (Math.abs(a[0] - cx) + Math.abs(a[1] - cy)) - (Math.abs(c[0] - cx) + Math.abs(c[1] - cy));
    });
    return tiles.map(function (t) {
      return "/api/tiles/" + z + "/" + t[0] + "/" + t[1] + ".json" + (key ? "?" + key : "");
    });
  }

  /** The bounds the map will show when centred on `center` at `zoom` (same size as now). */
  function boundsAt(map, center, zoom) {
    var half = map.getSize().divideBy(2);
    var middle = map.project(center, zoom);
    return L.latLngBounds(
      map.unproject(middle.subtract(half), zoom),
      map.unproject(middle.add(half), zoom)
    );
  }

  /** Features from a tile's compact markers (names from the category list; the popup fetches
      the rest when it opens). */
  function tileFeatures(body, names) {
    var f = body.fields || [];
    var at = function (name) { return f.indexOf(name); };
    var id = at("id"), lat = at("lat"), long = at("long"), st = at("status");
    var ds = at("dataset"), code = at("service_code"), requested = at("requested");
    var address = at("address");
    return (body.markers || []).map(function (m) {
      return {
        type: "Feature",
        geometry: { type: "Point", coordinates: [m[long], m[lat]] },
        properties: {
          service_request_id: m[id], status: m[st], dataset: m[ds], service_code: m[code],
          service_name: names[m[code]] || "",
          requested_datetime: requested >= 0 && m[requested] != null ? new Date(m[requested] * 1000).toISOString() : null,
          address: address >= 0 ? m[address] || null : null,
          compact: true
        }
      };
    });
  }

  /** Markers and groups drawn beyond the view, as a share of its size on each side: a drag
      shows them before the view reloads. The view's data tiles reach up to a whole tile
      (1024 px) beyond it: drawing all they hold cost DOM, style, layout and MarkerCluster's
      clustering for ~3 times what is in view. */
  var VIEW_PAD = 0.25;

  /** The groups (grid cells) of tile bodies: a dense tile sends groups, not markers. */
  function tileCells(bodies) {
    var cells = [];
    bodies.forEach(function (body) {
      if (!body || body.kind !== "clusters") return;
      (body.clusters || []).forEach(function (c) { cells.push({ lat: c[0], long: c[1], count: c[2], byStatus: c[3], byDataset: c[4] }); });
    });
    return cells;
  }

  /** The request features of tile bodies (a sparse tile sends its markers) near `view`. */
  function tileMarkers(bodies, names, view) {
    var near = view.pad(VIEW_PAD);
    var features = [];
    bodies.forEach(function (body) {
      if (body && body.kind !== "clusters") features = features.concat(tileFeatures(body, names));
    });
    return features.filter(function (f) {
      var c = f.geometry.coordinates;
      return near.contains([c[1], c[0]]);
    });
  }

  /** A map's service_code -> service_name from the category list, asked once (titles of
      markers): a function returning the promise, asked again after a failure. */
  function categoryNames() {
    var names = null;
    return function () {
      if (!names) {
        names = C.fetchJSON("/api/categories").then(function (list) {
          var out = {};
          (list || []).forEach(function (c) {
            if (c && c.service_code && !out[c.service_code]) out[c.service_code] = c.service_name || "";
          });
          return out;
        }, function () { names = null; return {}; }); // asked again on the next load
      }
      return names;
    };
  }

  window.C311.mapParts = Object.assign(window.C311.mapParts || {}, {
    VIEW_PAD: VIEW_PAD,
    boundsAt: boundsAt,
    categoryNames: categoryNames,
    tileCells: tileCells,
    tileFeatures: tileFeatures,
    tileMarkers: tileMarkers,
    tileUrls: tileUrls
  });
})();
