/* The request map shared by the map page and the embed: markers coloured by status,
   MarkerCluster when zoomed in, the server's grid aggregation when zoomed out, popups with
   the timeline, and live updates from the SSE stream. Data comes by tile
   (/api/tiles/{z}/{x}/{y}.json?<canonical filters>): every visitor of the same place asks the
   same URLs, which browsers and a proxy can cache (issue 15). */
(function () {
  "use strict";
  var C = window.C311;
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
      dataset: filters.dataset || "",
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
    if (filters.dataset && p.dataset !== filters.dataset) return false;
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

  /** The data tiles (slippy-map numbering) covering the map's view, nearest the centre first. */
  function tileUrls(map, key) {
    var z = clamp(Math.floor(map.getZoom()) - DATA_ZOOM_OFFSET, 0, MAX_DATA_ZOOM);
    var n = Math.pow(2, z);
    var b = map.getBounds();
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
    detailRow(dl, "Address", p.address);
    detailRow(dl, "Department", p.agency_responsible);
    C.timeRows(dl, p, detailRow); // reported, then updated, then closed, in the city's zone
    detailRow(dl, "Dataset", p.dataset);
    detailRow(dl, "Request id", p.service_request_id || "");
  }

  /** The popup's title, rows and description from the request's full detail. */
  function fillDetails(box, dl, p) {
    detailRows(C.clear(dl), p);
    var title = box.querySelector(".popup-title");
    if (title && p.service_name) title.textContent = p.service_name;
    if (p.description && !box.querySelector(".description")) {
      box.insertBefore(C.el("p", { className: "description", text: p.description }), box.querySelector("h4"));
    }
  }

  /** The popup of one request; the timeline is fetched when it opens. */
  function popupContent(feature, marker) {
    var p = feature.properties || {};
    var id = p.service_request_id || "";
    var timeline = C.el("ol", { className: "timeline", "aria-live": "polite" }, [
      C.el("li", { className: "muted", text: "Loading timeline…" })
    ]);
    var statusLine = C.el("p", { className: "popup-status" }, [C.statusBadge(p.status)]);
    var dl = C.el("dl", { className: "details" });
    detailRows(dl, p);
    var box = C.el("div", { className: "popup", "data-request-id": id }, [
      C.el("h3", { className: "popup-title", text: p.service_name || p.service_code || "Service request" }),
      statusLine,
      dl,
      p.description ? C.el("p", { className: "description", text: p.description }) : null,
      C.el("h4", { text: "Timeline" }),
      timeline,
      C.el("p", {}, [
        // Inside another site's iframe the page opens in a new tab, never replacing theirs.
        C.el("a", {
          href: "/requests/" + encodeURIComponent(id),
          target: window.top === window.self ? null : "_blank",
          rel: window.top === window.self ? null : "noopener",
          text: "Track or follow this request"
        })
      ])
    ]);
    C.fetchJSON("/api/requests/" + encodeURIComponent(id))
      .then(function (body) {
        // The detail says why a request was closed (and the city's own word) beyond the badge.
        // The detail is a Feature: its status is in `properties`, the wording beside them.
        var now = (body && body.properties) || p;
        if (body && body.properties) fillDetails(box, dl, now); // a tile's marker had the bare minimum
        if (body) C.statusLine(statusLine, now.status, body.status_text);
        C.renderTimeline(timeline, body && body.timeline);
        var figure = body && C.photoFigure ? C.photoFigure(body.media_url) : null;
        if (figure) box.insertBefore(figure, timeline.previousSibling);
        // The popup grew (timeline, photo): lay it out again so it pans fully into view.
        if (marker && marker.isPopupOpen()) marker.getPopup().update();
      })
      .catch(function (err) {
        C.clear(timeline).appendChild(C.el("li", { className: "error", text: "Timeline unavailable: " + err.message }));
      });
    return box;
  }

  function markerFor(feature) {
    var p = feature.properties || {};
    var coords = feature.geometry.coordinates;
    var marker = L.marker([coords[1], coords[0]], {
      icon: L.divIcon({
        className: "req-marker status-" + C.safeStatus(p.status),
        iconSize: [18, 18]
      }),
      title: (p.service_name || "Service request") + " (" + C.statusLabel(p.status) + ")",
      alt: (p.service_name || "Service request") + " (" + C.statusLabel(p.status) + ")",
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

  /** Grid cells from the clusters answer (GeoJSON features, or plain cells). */
  function cellsOf(body) {
    if (body && Array.isArray(body.features)) {
      return body.features.map(function (f) {
        var p = f.properties || {};
        return { lat: f.geometry.coordinates[1], long: f.geometry.coordinates[0], count: p.count, byStatus: p.by_status };
      });
    }
    return (body && body.cells) || [];
  }

  function cellMarker(map, cell) {
    var count = Number(cell.count) || 0;
    var size = count < 100 ? 34 : count < 1000 ? 42 : 52;
    var label = C.el("span", { text: count >= 10000 ? Math.round(count / 1000) + "k" : String(count) });
    var parts = Object.keys(cell.byStatus || {}).map(function (s) {
      return cell.byStatus[s] + " " + C.statusLabel(s).toLowerCase();
    });
    var title = count + " requests here" + (parts.length ? " (" + parts.join(", ") + ")" : "") + ". Zoom in to see them.";
    var marker = L.marker([cell.lat, cell.long], {
      icon: L.divIcon({ className: "grid-cell", html: label, iconSize: [size, size] }),
      title: title,
      alt: title,
      keyboard: true
    });
    marker.cell = cell; // the list view offers each group too
    marker.on("click", function () { map.setView([cell.lat, cell.long], Math.min(map.getZoom() + 2, 18)); });
    return marker;
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
      label: n + " requests here. Press Enter to show them."
    });
  }

  /** Whether the reader asked their system for less motion (no zoom or fade animations). */
  function reducedMotion() {
    return Boolean(window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches);
  }

  var TILE_NOTICE = "The base map could not load; requests are still shown.";
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
        var button = C.el("button", { type: "button", className: "map-fit", text: "Show all requests" });
        L.DomEvent.disableClickPropagation(button);
        button.addEventListener("click", onClick);
        return C.el("div", { className: "leaflet-bar map-fit-bar" }, [button]);
      }
    });
    return new Control();
  }

  /**
   * Create a request map in `element`.
   * cfg.center null: the map opens fitted to the requests' extent (/api/extent).
   * options: {filters, onStatus(text), onMapClick(latlng), onView(view), live: true, focusPending: false}
   * onView gets {mode: "markers", features} or {mode: "grid", cells} after every change.
   */
  function createRequestMap(element, cfg, options) {
    options = options || {};
    var centred = Array.isArray(cfg.center) && cfg.center.length === 2;
    // Without a centre the first view waits for the extent (a world view until then).
    var still = reducedMotion();
    var map = L.map(element, {
      center: centred ? cfg.center : [20, 0], zoom: centred ? cfg.zoom : 2, keyboard: true, zoomControl: true,
      zoomAnimation: !still, fadeAnimation: !still, markerZoomAnimation: !still
    });
    var tiles = L.tileLayer(cfg.tileUrl, { attribution: cfg.tileAttribution, maxZoom: 19 });
    watchTiles(map, tiles);
    tiles.addTo(map);
    var placeLayer = L.layerGroup().addTo(map);
    // A place or a request was asked for: the first fit gives way. A request named in the
    // URL counts from the start, whichever of its fetch and the extent's answers first.
    var viewChosen = Boolean(options.focusPending);
    var cluster = L.markerClusterGroup({
      maxClusterRadius: 50, showCoverageOnHover: false, chunkedLoading: true,
      iconCreateFunction: clusterIcon, animate: !still
    });
    var grid = L.layerGroup();
    var markers = {}; // service_request_id -> marker in the cluster group
    var live = {}; // service_request_id -> its latest live feature (newer than a cached tile)
    var names = null; // a promise of service_code -> service_name, for the tiles' markers
    var filters = options.filters || {};
    var mode = null;
    var pending = null;
    var timer = null;
    var shown = 0;
    var liveCount = 0;
    var gridTotal = 0;
    var loads = 0;
    var dataExtent = null; // the last /api/extent answer for the current filters

    function status(text) { if (options.onStatus) options.onStatus(text); }

    /** Wait `ms`, or reject as an abort when the view's load is superseded meanwhile. */
    function pause(ms, signal) {
      return new Promise(function (resolve, reject) {
        var t = setTimeout(resolve, ms);
        if (signal) signal.addEventListener("abort", function () {
          clearTimeout(t);
          reject(new DOMException("superseded", "AbortError"));
        });
      });
    }

    /** Public reads are rate-limited per client (429 + Retry-After): wait as told (bounded)
        and try once more, saying so, rather than failing the view. */
    function readJSON(url, signal, fresh) {
      // fresh: revalidate with the server (ETag) instead of the browser's cached tile.
      var opts = fresh ? { signal: signal, cache: "no-cache" } : { signal: signal };
      return C.fetchJSON(url, opts).catch(function (err) {
        if (err.status !== 429 || (signal && signal.aborted)) throw err;
        var seconds = Number(err.retryAfter);
        if (!(seconds >= 0)) seconds = 1;
        element.setAttribute("data-state", "busy");
        status("Busy — retrying…");
        return pause(Math.min(seconds, MAX_RETRY_WAIT_S) * 1000, signal).then(function () {
          return C.fetchJSON(url, opts);
        });
      });
    }

    function report() {
      if (mode !== "grid") shown = countShown();
      var base = mode === "grid"
        ? gridTotal + " requests in view (grouped – zoom in for details)"
        : shown + " requests shown";
      if (mode === "mixed" && gridTotal) base += ", " + gridTotal + " more grouped (zoom in for details)";
      if (liveCount) base += " · " + liveCount + " live update" + (liveCount === 1 ? "" : "s");
      var none = mode === "grid" ? gridTotal === 0 : shown === 0;
      if (none && dataExtent && dataExtent.count > 0) {
        base += " – " + dataExtent.count + " elsewhere: press “Show all requests” on the map";
      } else if (none && dataExtent && dataExtent.count === 0) {
        var fp = filterParams(filters);
        var narrowed = Object.keys(fp).some(function (k) { return fp[k]; });
        base += narrowed ? " – none anywhere match these filters" : " – none yet: they appear here as the city reports them";
      }
      status(base);
      if (options.onView) options.onView(currentView());
    }

    /** What the map shows now, for the list view: its request features, or its groups. */
    function currentView() {
      if (mode === "grid") {
        return { mode: "grid", cells: grid.getLayers().map(function (l) { return l.cell; }).filter(Boolean) };
      }
      return { mode: "markers", features: Object.keys(markers).map(function (id) { return markers[id].feature; }) };
    }

    /** "markers", "grid", or "mixed" (a tile too dense for markers beside sparse ones). */
    function setMode(next) {
      if (mode === next) return;
      mode = next;
      if (next === "markers") map.removeLayer(grid); else grid.addTo(map);
      if (next === "grid") map.removeLayer(cluster); else cluster.addTo(map);
    }

    /** Markers inside the view (tiles reach beyond it). */
    function countShown() {
      var b = map.getBounds();
      return Object.keys(markers).filter(function (id) { return b.contains(markers[id].getLatLng()); }).length;
    }

    function sameSpot(a, b) {
      var pa = a.properties || {}, pb = b.properties || {};
      var ca = a.geometry.coordinates, cb = b.geometry.coordinates;
      return pa.status === pb.status && ca[0] === cb[0] && ca[1] === cb[1];
    }

    /** Show these features: markers already shown and unchanged stay (a pan redraws only
        what it uncovers); one id is one marker, whichever tiles sent it. */
    function placeMarkers(features, withLive) {
      var next = {};
      features.forEach(function (f) {
        var id = f.properties.service_request_id;
        var newer = live[id]; // the stream is newer than a tile cached for a few seconds
        if (!newer) next[id] = f;
        else if (matches(newer, filters)) next[id] = newer;
      });
      var view = map.getBounds();
      // Requests the stream brought since the tiles were cached (not where groups are shown).
      if (withLive) Object.keys(live).forEach(function (id) {
        var f = live[id], c = f.geometry.coordinates;
        if (!next[id] && matches(f, filters) && view.contains(L.latLng(c[1], c[0]))) next[id] = f;
      });
      var drop = [];
      Object.keys(markers).forEach(function (id) {
        var m = markers[id], f = next[id];
        if (f && (f === m.feature || sameSpot(f, m.feature))) { delete next[id]; return; }
        // A popup the reader has open (or one the page opened for /?request=) opens again
        // on the marker that replaces this one.
        if (!focusId && m.isPopupOpen()) focusId = id;
        drop.push(m);
        delete markers[id];
      });
      if (drop.length) cluster.removeLayers(drop);
      var add = Object.keys(next).map(function (id) {
        var m = markerFor(next[id]);
        markers[id] = m;
        return m;
      });
      if (add.length) cluster.addLayers(add);
    }


    /** A request the page was opened for (/?request=<id>, e.g. from an email): once its
        marker is loaded, show it out of its cluster with its popup open, once. */
    var focusId = null;
    function openFocused(tries) {
      var marker = focusId && markers[focusId];
      if (!marker) return;
      tries = tries || 0;
      if (marker._icon) {
        focusId = null;
        marker.openPopup();
      } else if (marker.__parent && marker.__parent._icon && cluster.hasLayer(marker)) {
        // Still inside a group at this zoom: fan the group out, then open it.
        focusId = null;
        cluster.once("spiderfied", function () { marker.openPopup(); });
        marker.__parent.spiderfy();
      } else if (tries < 40) {
        // chunkedLoading adds markers over several frames: wait until this one is drawn.
        // (Not zoomToShowLayer: its moveend listener outlives a reload and then throws.)
        setTimeout(function () { if (markers[focusId] === marker) openFocused(tries + 1); }, 50);
      }
    }

    function focusRequest(feature) {
      var coords = feature && feature.geometry && feature.geometry.coordinates;
      var id = feature && feature.properties && feature.properties.service_request_id;
      if (!coords || !id) return;
      focusId = id;
      map.setView([coords[1], coords[0]], Math.max(17, cfg.clusterBelowZoom || 0));
      openFocused();
    }

    /** The tiles' markers and groups together: a dense tile sends groups beside sparse
        tiles' markers ("mixed"). */
    function showTiles(bodies, categoryNames) {
      var features = [];
      var cells = [];
      bodies.forEach(function (body) {
        if (!body) return;
        if (body.kind === "clusters") {
          (body.clusters || []).forEach(function (c) { cells.push({ lat: c[0], long: c[1], count: c[2], byStatus: c[3] }); });
        } else {
          features = features.concat(tileFeatures(body, categoryNames));
        }
      });
      setMode(cells.length ? (features.length ? "mixed" : "grid") : "markers");
      grid.clearLayers();
      gridTotal = 0;
      var view = map.getBounds();
      cellsOf({ cells: cells }).forEach(function (cell) {
        if (view.contains(L.latLng(cell.lat, cell.long))) gridTotal += Number(cell.count) || 0;
        grid.addLayer(cellMarker(map, cell));
      });
      placeMarkers(features, !cells.length);
      report();
      openFocused();
    }

    /** service_code -> service_name from the category list, asked once (titles of markers). */
    function categoryNames() {
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
    }

    /** The view's data tiles, all at once (each one cacheable and usually cached). */
    function loadTiles(signal, fresh) {
      var urls = tileUrls(map, tileKey(filters));
      var reads = Promise.all(urls.map(function (url) { return readJSON(url, signal, fresh); }));
      return Promise.all([categoryNames(), reads]).then(function (got) {
        if (!signal.aborted) showTiles(got[1], got[0]);
      });
    }

    function load(fresh) {
      if (pending) pending.abort();
      pending = new AbortController();
      var signal = pending.signal;
      var started = performance.now();
      element.setAttribute("data-state", "loading");
      status("Loading requests…");
      var job = loadTiles(signal, fresh === true);
      job.then(function () {
        if (signal.aborted) return;
        // For tests and measurements: when the view finished loading, and how long it took.
        loads += 1;
        element.setAttribute("data-state", "ready");
        element.setAttribute("data-loads", String(loads));
        element.setAttribute("data-load-ms", String(Math.round(performance.now() - started)));
      }).catch(function (err) {
        if (err.name === "AbortError") return;
        element.setAttribute("data-state", "error");
        status("Could not load requests: " + err.message);
      });
    }

    function scheduleLoad() {
      clearTimeout(timer);
      timer = setTimeout(load, 150);
    }

    /** Zoomed out, live changes refresh the groups at most every few seconds. */
    var gridRefresh = null;
    function refreshGridSoon() {
      if (gridRefresh) return;
      gridRefresh = setTimeout(function () { gridRefresh = null; if (mode === "grid") load(true); }, 3000);
    }

    /** Apply one live change: add, move, recolour or drop its marker. */
    function applyLive(feature) {
      var p = feature && feature.properties;
      if (!p || !p.service_request_id || !feature.geometry) return;
      liveCount += 1;
      live[p.service_request_id] = feature;
      if (mode === "grid") { refreshGridSoon(); return; }
      var old = markers[p.service_request_id];
      var wasOpen = !!(old && old.isPopupOpen());
      if (old) { cluster.removeLayer(old); delete markers[p.service_request_id]; }
      var coords = feature.geometry.coordinates;
      var inView = map.getBounds().contains(L.latLng(coords[1], coords[0]));
      if (matches(feature, filters) && inView) {
        var marker = markerFor(feature);
        markers[p.service_request_id] = marker;
        cluster.addLayer(marker);
        var icon = marker.getElement && marker.getElement();
        if (icon) icon.classList.add("just-updated");
        // A reader looking at this request keeps its popup, now with the new timeline.
        if (wasOpen && icon) marker.openPopup();
      }
      report();
    }

    function startLive() {
      if (!window.EventSource || options.live === false) return;
      var source = new EventSource("/api/stream");
      source.addEventListener("request", function (event) {
        try { applyLive(JSON.parse(event.data)); } catch (e) { /* a bad event is skipped */ }
      });
      source.addEventListener("open", function () { element.setAttribute("data-live", "connected"); });
      source.addEventListener("error", function () { element.setAttribute("data-live", "reconnecting"); });
    }

    /** Where the requests matching the filters are (null on failure). */
    function fetchExtent() {
      return readJSON("/api/extent" + C.query(filterParams(filters))).then(function (body) {
        dataExtent = body;
        return body;
      }, function () { return null; });
    }

    /** Fit the view to the requests; with none, stay put and say so. `first`: only if the
        page has not moved to a place or request meanwhile (false then, and nothing done). */
    function fitToData(first) {
      return fetchExtent().then(function (body) {
        if (first && viewChosen) return false;
        if (!body || !Array.isArray(body.bbox)) return false; // nothing to fit: report() says so
        var b = body.bbox; // [west, south, east, north]
        map.fitBounds([[b[1], b[0]], [b[3], b[2]]], { padding: [20, 20], maxZoom: FIT_MAX_ZOOM, animate: false });
        return true;
      });
    }

    /** Move to a found place and mark it (address search, "Use my location"). */
    function showPlace(latlng, label, zoom) {
      viewChosen = true;
      placeLayer.clearLayers();
      L.circleMarker(latlng, { radius: 8, className: "place-pin", weight: 3 })
        .bindTooltip(label || "Chosen place", { permanent: true, direction: "top", className: "place-label" })
        .addTo(placeLayer);
      map.setView(latlng, zoom || 17);
    }

    function markView() {
      var c = map.getCenter();
      element.setAttribute("data-zoom", String(map.getZoom()));
      element.setAttribute("data-center", c.lat.toFixed(5) + "," + c.lng.toFixed(5));
    }

    markView();
    map.on("zoomend moveend", markView);
    map.on("moveend", scheduleLoad);
    if (options.onMapClick) map.on("click", function (e) { options.onMapClick(e.latlng); });
    // Escape closes an open request from anywhere in the map (Leaflet only listens while the
    // map itself has the focus, not a marker or the popup's own links).
    element.addEventListener("keydown", function (e) {
      if (e.key === "Escape" && map.closePopup) { focusId = null; map.closePopup(); }
    });
    fitControl(function () { viewChosen = true; fitToData(); }).addTo(map);
    if (centred) {
      load();
      // Only to say how many are elsewhere when this view has none.
      fetchExtent().then(function () { if (element.getAttribute("data-state") === "ready") report(); });
    } else {
      status("Finding the requests…");
      fitToData(true).then(function (moved) { if (!moved && !viewChosen) load(); });
    }
    startLive();

    return {
      map: map,
      setFilters: function (next) { filters = next || {}; fetchExtent(); load(); },
      getFilters: function () { return filters; },
      reload: load,
      fitToData: fitToData,
      showPlace: showPlace,
      focusRequest: function (feature) { viewChosen = true; focusRequest(feature); }
    };
  }

  window.C311.createRequestMap = createRequestMap;
  window.C311.filterParams = filterParams;
})();
