/* The pieces of the request map (mapview.js): filters and their live matching, the data
   tiles' URLs and compact markers, markers and popups, grid cells, the base-map notice and the
   "Show all requests" control. Loaded before mapview.js, which assembles them into a map. */
(function () {
  "use strict";
  var C = window.C311;
  var _ = C._, _n = C._n;
  // A data tile spans 4 x 4 base-map tiles (1024 px): a full-screen view is a few requests.
  // The server sends a tile's markers from data zoom 11 (map zoom 13), its groups below that
  // or when one tile holds too many markers.
  var DATA_ZOOM_OFFSET = 2;
  var MAX_DATA_ZOOM = 20;
  var MERCATOR_MAX_LAT = 85.0511287798;
  var LIST_PARAMS = ["agency", "dataset", "service_code", "status"];
  var MAX_RETRY_WAIT_S = 10; // a longer Retry-After is cut short: the view retries once, then says why
  var ALL_STATUSES = ["open", "acknowledged", "in_progress", "closed"];

  /** The API query parameters of a filter object. */
  function filterParams(filters) {
    var statuses = (filters.statuses || []).filter(function (s) { return ALL_STATUSES.indexOf(s) >= 0; });
    return {
      status: statuses.length && statuses.length < ALL_STATUSES.length ? statuses.join(",") : "",
      service_code: filters.service_code || "",
      agency: filters.agency || "",
      // The layers switched on (an array; absent: every dataset), else one named dataset.
      dataset: Array.isArray(filters.datasets) ? filters.datasets.join(",") : filters.dataset || "",
      since: C.dayStart(filters.since || ""),
      until: C.dayEnd(filters.until || ""),
      q: filters.q || ""
    };
  }

  /** Whether a live feature passes the filters (the same rules the API applies). */
  function matches(feature, filters) {
    var p = feature.properties || {};
    var statuses = filters.statuses || [];
    if (statuses.length && statuses.indexOf(p.status) < 0) return false;
    if (filters.service_code && p.service_code !== filters.service_code) return false;
    if (filters.agency && p.agency_responsible !== filters.agency) return false;
    if (Array.isArray(filters.datasets)) {
      if (filters.datasets.indexOf(p.dataset) < 0) return false;
    } else if (filters.dataset && p.dataset !== filters.dataset) return false;
    var requested = p.requested_datetime ? new Date(p.requested_datetime) : null;
    if (requested && filters.since && requested < new Date(C.dayStart(filters.since))) return false;
    if (requested && filters.until && requested >= new Date(C.dayEnd(filters.until))) return false;
    if (filters.q) {
      var hay = [p.description, p.address, p.service_name].join(" ").toLowerCase();
      if (hay.indexOf(filters.q.toLowerCase()) < 0) return false;
    }
    return true;
  }

  function clamp(v, lo, hi) { return Math.max(lo, Math.min(hi, v)); }

  /** The tiles' filter key in the server's canonical form (sorted names, sorted unique
      values, lower-case text), so the URL is the one every cache holds: no redirect. */
  function tileKey(filters) {
    var fp = filterParams(filters);
    return Object.keys(fp).filter(function (k) { return fp[k]; }).sort().map(function (k) {
      var value = String(fp[k]).trim();
      if (LIST_PARAMS.indexOf(k) >= 0) {
        value = value.split(",").map(function (v) { return v.trim(); }).filter(function (v, i, all) {
          return v && all.indexOf(v) === i;
        }).sort().join(",");
      }
      if (k === "q") value = value.toLowerCase();
      return k + "=" + encodeURIComponent(value);
    }).join("&");
  }

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

  /** Tiles asked ahead (issue 15). Once a view is drawn and has stayed still a moment, the
      data tiles that a zoom in from it would ask (the + button and key keep the centre) are
      read at low priority, so that the zoom finds them in hand as it starts instead of
      waiting for them after its animation (finer tiles group their requests by a query:
      at 1M they came up to ~300 ms after the animation's end). Not a zoom out's: its coarser
      tiles come from the counted cells and were already in hand ~200 ms before its
      animation ended (bench/map_paint.py), so reading them ahead only doubled the reads.
      Modest, for a crowd: only after the view is still and the browser idle, at most
      AHEAD_MAX reads per view, two at a time, none begun once the map moves again; a proxy
      answers them for everyone looking at the same place. A body is reused only as long as
      its own Cache-Control lets any cache serve it without waiting (max-age +
      stale-while-revalidate, less its Age), as the browser would. */
  var AHEAD_AFTER_MS = 400; // still this long: the person is looking, not moving on
  var AHEAD_MAX = 8;
  var AHEAD_AT_ONCE = 2;

  /** Seconds a cache may serve an answer with this Cache-Control without waiting for it. */
  function reuseSeconds(cacheControl) {
    var text = String(cacheControl || "");
    if (/no-store|no-cache|private/.test(text)) return 0;
    var age = /max-age=(\d+)/.exec(text), stale = /stale-while-revalidate=(\d+)/.exec(text);
    return (age ? Number(age[1]) : 0) + (stale ? Number(stale[1]) : 0);
  }

  /** onRead(): all of a view's tiles read ahead are in hand (a mark for tests and benches). */
  function tilesAhead(map, onRead) {
    var held = {}; // tile URL -> {body: promise of its JSON, until: performance.now() ms}
    var timer = null, idle = null, round = 0;

    /** A body read ahead for this URL, still fresh enough (in flight counts), or null. */
    function take(url) {
      var entry = held[url];
      if (entry && entry.until < performance.now()) delete held[url];
      return held[url] ? held[url].body : null;
    }

    function ask(url) {
      var entry = { until: Infinity, body: null };
      held[url] = entry;
      entry.body = fetch(url, { headers: { Accept: "application/json" }, priority: "low" }).then(function (response) {
        if (!response.ok) throw new Error(String(response.status)); // the zoom asks again
        // A proxy's copy may have aged already (Age): it may be served that much less long.
        var left = reuseSeconds(response.headers.get("Cache-Control")) - (Number(response.headers.get("Age")) || 0);
        entry.until = performance.now() + 1000 * left;
        return response.json();
      });
      entry.body.catch(function () { if (held[url] === entry) delete held[url]; });
      return entry.body;
    }

    /** The URLs of a zoom in's tiles not already held; none when they are more than
        AHEAD_MAX (a very large screen): the zoom waits for every tile of its view anyway. */
    function wanted(key) {
      var zoom = map.getZoom() + 1;
      if (zoom > map.getMaxZoom()) return [];
      var urls = tileUrls(map, key, { center: map.getCenter(), zoom: zoom });
      return urls.length > AHEAD_MAX ? [] : urls.filter(function (url) { return !take(url); });
    }

    function askAll(key, mine) {
      Object.keys(held).forEach(take); // forget the stale
      var urls = wanted(key), next = 0, got = 0;
      function one() {
        if (mine !== round || next >= urls.length) return; // the map moved: no more
        ask(urls[next++]).then(function () {
          got += 1;
          if (got === urls.length && onRead) onRead();
          one();
        }, function () { next = urls.length; }); // refused: no more
      }
      for (var i = 0; i < AHEAD_AT_ONCE; i++) one();
    }

    /** Nothing more asked (the map moves); reads in flight finish and stay for the zoom. */
    function stop() {
      round += 1;
      clearTimeout(timer);
      if (idle !== null && window.cancelIdleCallback) window.cancelIdleCallback(idle);
      timer = idle = null;
    }

    /** The view (filter key `key`) is drawn: ask ahead once it stays still. */
    function schedule(key) {
      stop();
      var mine = round;
      timer = setTimeout(function () {
        timer = null;
        if (!window.requestIdleCallback) { askAll(key, mine); return; }
        idle = window.requestIdleCallback(function () { idle = null; askAll(key, mine); }, { timeout: 1000 });
      }, AHEAD_AFTER_MS);
    }

    return { schedule: schedule, stop: stop, take: take };
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

  function detailRow(dl, term, value) {
    if (!value) return;
    dl.appendChild(C.el("dt", { text: term }));
    dl.appendChild(C.el("dd", { text: value }));
  }

  function detailRows(dl, p) {
    var info = C.datasetInfo(p.dataset);
    if (info.hasStatus) {
      detailRow(dl, _("Address"), p.address);
      detailRow(dl, _("Department"), p.agency_responsible);
      C.timeRows(dl, p, detailRow); // reported, then updated, then closed, in the city's zone
    } else {
      // A point event (crime): what and when it happened, near where (the address is
      // generalised to the block); no status, no "closed", no time to close.
      detailRow(dl, info.kindLabel, p.service_name || p.service_code);
      detailRow(dl, _("When"), C.formatDate(p.requested_datetime));
      detailRow(dl, _("Near"), p.address);
      detailRow(dl, _("Department"), p.agency_responsible);
    }
    detailRow(dl, _("Dataset"), info.label);
    detailRow(dl, _("%(label)s id", { label: info.idLabel }), p.service_request_id || "");
  }

  /** The popup or list title of a record: its category, or what kind of record it is. */
  function recordTitle(p) {
    var info = C.datasetInfo(p.dataset);
    if (p.service_name || p.service_code) return p.service_name || p.service_code;
    return info.dataset === "311" ? _("Service request") : info.item.charAt(0).toUpperCase() + info.item.slice(1);
  }

  /** A marker's accessible name: "Pothole (Open)", "BURGLARY (crime incident, Jan 3, 2006…)". */
  function markerName(p) {
    var info = C.datasetInfo(p.dataset);
    if (!info.hasStatus) return recordTitle(p) + " (" + info.item + ", " + C.formatDate(p.requested_datetime) + ")";
    var kind = info.dataset === "311" ? "" : info.item + ", ";
    return recordTitle(p) + " (" + kind + C.statusLabel(p.status) + ")";
  }

  /** The description, labelled when it is not a plain description ("Violations: …"). */
  function descriptionNode(p) {
    if (!p.description) return null;
    var label = C.datasetInfo(p.dataset).descriptionLabel;
    var node = C.el("p", { className: "description" });
    if (label && label !== _("Description")) node.appendChild(C.el("strong", { text: label + ": " }));
    node.appendChild(document.createTextNode(p.description));
    return node;
  }

  /** The popup's title, rows and description from the request's full detail. */
  function fillDetails(box, dl, p) {
    detailRows(C.clear(dl), p);
    var title = box.querySelector(".popup-title");
    if (title && p.service_name) title.textContent = p.service_name;
    if (p.description && !box.querySelector(".description")) {
      box.insertBefore(descriptionNode(p), box.querySelector(".popup-after"));
    }
  }

  /** The popup of one request; the timeline is fetched when it opens. */
  function popupContent(feature, marker) {
    var p = feature.properties || {};
    var id = p.service_request_id || "";
    var info = C.datasetInfo(p.dataset);
    var timeline = C.el("ol", { className: "timeline", "aria-live": "polite" }, [
      C.el("li", { className: "muted", text: _("Loading timeline…") })
    ]);
    // A record without a status (a crime incident) says what it is instead of a badge.
    var statusLine = info.hasStatus
      ? C.el("p", { className: "popup-status" }, [C.statusBadge(p.status)])
      : C.el("p", { className: "popup-kind", text: info.item.charAt(0).toUpperCase() + info.item.slice(1) });
    var dl = C.el("dl", { className: "details" });
    detailRows(dl, p);
    var follow = info.idLabel === "Case" ? _("Track or follow this case") : _("Track or follow this request");
    var box = C.el("div", { className: "popup", "data-request-id": id, "data-dataset": info.dataset }, [
      C.el("h3", { className: "popup-title", text: recordTitle(p) }),
      statusLine,
      dl,
      descriptionNode(p),
      // No lifecycle, nothing to follow: a crime incident has no timeline and no tracking.
      info.hasStatus ? C.el("h4", { className: "popup-after", text: _("Timeline") }) : C.el("span", { className: "popup-after" }),
      info.hasStatus ? timeline : null,
      info.hasStatus ? C.el("p", {}, [
        // Inside another site's iframe the page opens in a new tab, never replacing theirs.
        C.el("a", {
          href: "/requests/" + encodeURIComponent(id),
          target: window.top === window.self ? null : "_blank",
          rel: window.top === window.self ? null : "noopener",
          text: follow
        })
      ]) : null
    ]);
    C.fetchJSON("/api/requests/" + encodeURIComponent(id))
      .then(function (body) {
        // The detail says why a request was closed (and the city's own word) beyond the badge.
        // The detail is a Feature: its status is in `properties`, the wording beside them.
        // The close time (and the city's wording) sit beside `properties`: read both, or the
        // popup says "Last updated" for the close and never "Closed" (as the track page does).
        var now = body && body.properties ? Object.assign({}, body.properties, { closed_datetime: body.closed_datetime }) : p;
        if (body && body.properties) fillDetails(box, dl, now); // a tile's marker had the bare minimum
        if (body && info.hasStatus) C.statusLine(statusLine, now.status, body.status_text);
        C.renderTimeline(timeline, body && body.timeline);
        var figure = body && C.photoFigure ? C.photoFigure(body.media_url) : null;
        if (figure) box.insertBefore(figure, box.querySelector(".popup-after"));
        // The popup grew (timeline, photo): lay it out again so it pans fully into view.
        // update() takes the content out and puts it back, which drops the keyboard focus:
        // give it back to whatever in the popup had it (the title, after "Show on the map").
        if (marker && marker.isPopupOpen()) {
          var focused = box.contains(document.activeElement) ? document.activeElement : null;
          marker.getPopup().update();
          if (focused && document.activeElement !== focused) focused.focus();
        }
      })
      .catch(function (err) {
        C.clear(timeline).appendChild(C.el("li", { className: "error", text: _("Timeline unavailable: %(reason)s", { reason: err.message }) }));
      });
    return box;
  }

  function markerFor(feature) {
    var p = feature.properties || {};
    var coords = feature.geometry.coordinates;
    var info = C.datasetInfo(p.dataset);
    // 311 requests keep their round status markers; other datasets are drawn by their own
    // shape (a house for a code violation case, a triangle for a crime incident).
    var symbol = info.symbol !== "circle";
    var name = markerName(p);
    var marker = L.marker([coords[1], coords[0]], {
      icon: L.divIcon({
        className: "req-marker " + (info.hasStatus ? "status-" + C.safeStatus(p.status) : "no-status") + (symbol ? " symbol" : ""),
        html: symbol ? C.datasetSymbol(p.dataset, p.status) : "",
        iconSize: symbol ? [22, 22] : [18, 18]
      }),
      title: name,
      alt: name,
      keyboard: true,
      riseOnHover: true
    });
    marker.feature = feature;
    marker.on("add", function () {
      var icon = marker.getElement();
      if (icon) icon.setAttribute("data-request-id", p.service_request_id || "");
    });
    // One box per opening: popup.update() (after the timeline and photo load) calls this
    // function again, which must not build a fresh box and fetch again (an endless loop).
    var box = null;
    marker.on("popupclose", function () { box = null; });
    marker.bindPopup(function () {
      if (!box) box = popupContent(feature, marker);
      return box;
    }, { maxWidth: 320, minWidth: 220 });
    return marker;
  }

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

  /** Markers and groups drawn beyond the view, as a share of its size on each side: a drag
      shows them before the view reloads. The view's data tiles reach up to a whole tile
      (1024 px) beyond it: drawing all they hold cost DOM, style, layout and MarkerCluster's
      clustering for ~3 times what is in view. */
  var VIEW_PAD = 0.25;

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

  window.C311.mapParts = {
    anyStatus: anyStatus,
    FIT_MAX_ZOOM: FIT_MAX_ZOOM,
    MAX_RETRY_WAIT_S: MAX_RETRY_WAIT_S,
    VIEW_PAD: VIEW_PAD,
    boundsAt: boundsAt,
    groupPanes: groupPanes,
    cellWords: cellWords,
    statusCounts: statusCounts,
    clusterIcon: clusterIcon,
    filterParams: filterParams,
    fillDatasetLegend: fillDatasetLegend,
    fitControl: fitControl,
    markerFor: markerFor,
    matches: matches,
    reducedMotion: reducedMotion,
    showStatusParts: showStatusParts,
    tileFeatures: tileFeatures,
    tileKey: tileKey,
    tileUrls: tileUrls,
    tilesAhead: tilesAhead,
    watchTiles: watchTiles
  };
})();
