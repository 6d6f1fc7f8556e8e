/* The request map shared by the map page and the embed: markers coloured by status,
   MarkerCluster when zoomed in, the server's grid aggregation when zoomed out, popups with
   the timeline, and live updates from the SSE stream. Data comes by tile
   (/api/tiles/{z}/{x}/{y}.json?<canonical filters>): every visitor of the same place asks the
   same URLs, which browsers and a proxy can cache (issue 15). */
(function () {
  "use strict";
  var C = window.C311;
  var _ = C._, _n = C._n;
  // The pieces live in the scripts loaded before it (mapfilters.js … mapparts.js, then
  // markerlayer.js and mapreads.js); local names keep this file readable.
  var P = window.C311.mapParts;
  var FIT_MAX_ZOOM = P.FIT_MAX_ZOOM,
    boundsAt = P.boundsAt,
    filterParams = P.filterParams,
    fitControl = P.fitControl,
    groupPanes = P.groupPanes,
    markerLayer = P.markerLayer,
    reducedMotion = P.reducedMotion,
    tileCells = P.tileCells,
    tileKey = P.tileKey,
    tileMarkers = P.tileMarkers,
    tileUrls = P.tileUrls,
    tilesAhead = P.tilesAhead,
    watchTiles = P.watchTiles;


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
    // The request markers (MarkerCluster); its last chunk drawn may be the frame to mark.
    var requestMarkers = markerLayer(map, still, function () { if (paintDue) markPainted(); });
    var groups = groupPanes(map); // the grid's groups: shown, and the next view's built hidden
    // A zoom in's tiles, asked once a drawn view stays still.
    var ahead = tilesAhead(map, function () { note("ahead"); });
    var categoryNames = P.categoryNames(); // service_code -> service_name, for the tiles' markers
    var filters = options.filters || {};
    var mode = null;
    var pending = null;
    var timer = null;
    var shown = 0;
    var liveCount = 0;
    var gridTotal = 0;
    var shownByDataset = {}; // what the status line names: "12 requests, 3 crime incidents"
    var gridByDataset = {};
    var loads = 0;
    var dataExtent = null; // the last /api/extent answer for the current filters

    function status(text) { if (options.onStatus) options.onStatus(text); }
    var readJSON = P.retryingReader(element, status);

    /** A Performance API mark for bench/map_paint.py's breakdown of a repaint. */
    function note(step) { if (window.performance && performance.mark) performance.mark("c311:" + step); }


    function report() {
      if (mode !== "grid") shown = countShown();
      // 311 requests alone keep "12 requests shown"; other layers are named by their words.
      var base = mode === "grid"
        ? (C.otherDatasets(gridByDataset)
          ? _("%(items)s in view (grouped – zoom in for details)", { items: C.datasetCounts(gridByDataset) })
          : _n("%(count)s request in view (grouped – zoom in for details)", "%(count)s requests in view (grouped – zoom in for details)", gridTotal))
        : (C.otherDatasets(shownByDataset)
          ? _("%(items)s shown", { items: C.datasetCounts(shownByDataset) })
          : _n("%(count)s request shown", "%(count)s requests shown", shown));
      if (mode === "mixed" && gridTotal) base += ", " + _n("%(count)s more grouped (zoom in for details)", "%(count)s more grouped (zoom in for details)", gridTotal);
      if (liveCount) base += " · " + _n("%(count)s live update", "%(count)s live updates", liveCount);
      var none = mode === "grid" ? gridTotal === 0 : shown === 0;
      if (noLayers()) {
        base = _("No layer is switched on: tick one under “Layers” to see its records.");
      } else if (none && dataExtent && dataExtent.count > 0) {
        base += " – " + _("%(count)s elsewhere: press “Show all requests” on the map", { count: C.formatNumber(dataExtent.count) });
      } else if (none && dataExtent && dataExtent.count === 0) {
        var fp = filterParams(filters);
        var narrowed = Object.keys(fp).some(function (k) { return fp[k]; });
        base += " – " + (narrowed ? _("none anywhere match these filters") : _("none yet: they appear here as the city reports them"));
      }
      status(base);
      tellView();
    }

    /** The list view follows the map once the map's new frame is drawn: the map does not wait
        for a hundred list items. Two hops after the frame, so that markPainted's mark (one
        hop) comes first. */
    var viewDue = false;
    function tellView() {
      if (!options.onView || viewDue) return;
      viewDue = true;
      requestAnimationFrame(function () {
        setTimeout(function () {
          setTimeout(function () { viewDue = false; options.onView(currentView()); }, 0);
        }, 0);
      });
    }

    /** What the map shows now, for the list view: its request features, or its groups. */
    function currentView() {
      if (mode === "grid") {
        return { mode: "grid", cells: groups.shown().getLayers().map(function (l) { return l.cell; }).filter(Boolean) };
      }
      return { mode: "markers", features: requestMarkers.features() };
    }

    /** "markers", "grid", or "mixed" (a tile too dense for markers beside sparse ones). */
    function setMode(next) {
      if (mode === next) return;
      mode = next;
      requestMarkers.show(next !== "grid");
    }

    /** Markers inside the view (tiles reach beyond it), also counted by dataset. */
    function countShown() {
      var counted = requestMarkers.countShown();
      shownByDataset = counted.byDataset;
      return counted.count;
    }

    function focusRequest(feature) {
      var coords = feature && feature.geometry && feature.geometry.coordinates;
      var id = feature && feature.properties && feature.properties.service_request_id;
      if (!coords || !id) return;
      requestMarkers.focus(id);
      // No zoom animation: a popup opened while the map still zooms is placed for the old
      // zoom, pans by the wrong amount and ends with its top cut off above the map.
      map.setView([coords[1], coords[0]], Math.max(17, cfg.clusterBelowZoom || 0), { animate: false });
      requestMarkers.openFocused();
    }

    /** While a zoom plays, with the tiles of the view it goes to in hand: make ready what
        that view shows, so the load at its end has little left to do. Its groups are built
        in the hidden pane, its new markers made (MarkerCluster adds them at the end); a view
        of groups only takes the markers off now, before MarkerCluster re-clusters them all
        for the new zoom as it ends, only for the load to drop them. */
    function prepare(bodies, names, target) {
      groups.build(tileCells(bodies), target, bodies);
      var features = tileMarkers(bodies, names, target);
      if (!features.length && mode !== "grid") {
        setMode("grid");
        requestMarkers.place([], false, filters);
      }
      requestMarkers.prepare(features);
    }

    /** The tiles' markers and groups together: a dense tile sends groups beside sparse
        tiles' markers ("mixed"). Groups come from the hidden pane when a zoom built them
        from these very tiles while it played (prefetchZoom), else they are built now. */
    function showTiles(bodies, categoryNames) {
      var view = map.getBounds();
      var features = tileMarkers(bodies, categoryNames, view);
      var cells = tileCells(bodies);
      setMode(cells.length ? (features.length ? "mixed" : "grid") : "markers");
      gridTotal = 0;
      gridByDataset = {};
      cells.forEach(function (cell) {
        if (view.contains(L.latLng(cell.lat, cell.long))) {
          gridTotal += Number(cell.count) || 0;
          Object.keys(cell.byDataset || {}).forEach(function (d) { gridByDataset[d] = (gridByDataset[d] || 0) + (Number(cell.byDataset[d]) || 0); });
        }
      });
      if (!groups.show(bodies)) {
        groups.build(cells, view, bodies);
        groups.show(bodies);
      }
      requestMarkers.place(features, !cells.length, filters);
      report();
      requestMarkers.openFocused();
    }

    /** The view's data tiles, all at once (each one cacheable and usually cached). */
    /** Every layer switched off (an empty dataset list): nothing to ask the server. */
    function noLayers() {
      return Array.isArray(filters.datasets) && !filters.datasets.length;
    }

    function loadTiles(signal, fresh) {
      if (noLayers()) {
        showTiles([], {});
        return Promise.resolve();
      }
      var urls = tileUrls(map, tileKey(filters));
      var early = fresh ? {} : prefetched;
      prefetched = {};
      var reads = Promise.all(urls.map(function (url) {
        var again = function () { return readJSON(url, signal, fresh); };
        var first = early[url] || (fresh ? null : ahead.take(url)); // without motion: no zoomanim
        return first ? first.catch(again) : again();
      }));
      return Promise.all([categoryNames(), reads]).then(function (got) {
        note("tiles");
        if (!signal.aborted) showTiles(got[1], got[0]);
        note("drawn");
      });
    }

    function load(fresh) {
      ahead.stop();
      if (pending) pending.abort();
      pending = new AbortController();
      var signal = pending.signal;
      var started = performance.now();
      element.setAttribute("data-state", "loading");
      status(_("Loading requests…"));
      var job = loadTiles(signal, fresh === true);
      job.then(function () {
        if (signal.aborted) return;
        // For tests and measurements: when the view finished loading, and how long it took.
        loads += 1;
        element.setAttribute("data-state", "ready");
        element.setAttribute("data-loads", String(loads));
        element.setAttribute("data-load-ms", String(Math.round(performance.now() - started)));
        markPainted();
        // A view the person moved to (not a refresh for live changes): its zoom in, ahead.
        if (fresh !== true && !noLayers()) ahead.schedule(tileKey(filters));
      }).catch(function (err) {
        if (err.name === "AbortError") return;
        element.setAttribute("data-state", "error");
        status(_("Could not load requests: %(reason)s", { reason: err.message }));
      });
    }

    /** For the paint benchmark (bench/map_paint.py): a Performance API mark once the frame
        showing this view's markers and groups is drawn, i.e. after its groups' pane is shown
        (groupPanes), MarkerCluster's last chunk of markers (chunkedLoading) and the next
        frame. */
    var paintDue = false;
    function markPainted() {
      var chunking = requestMarkers.chunking();
      paintDue = chunking;
      if (chunking || !window.performance || !performance.mark) return;
      requestAnimationFrame(function () { setTimeout(function () { performance.mark("c311:painted"); }, 0); });
    }

    function scheduleLoad() {
      note("moveend");
      clearTimeout(timer);
      if (zoomed || dragged) {
        // A zoom or a drag is one gesture that has ended (a zoom's tiles were asked as it
        // began): nothing to wait for.
        zoomed = dragged = false;
        load();
        return;
      }
      // A pan by keys comes as several moves: load once they settle.
      timer = setTimeout(load, 150);
    }

    /** As a zoom starts, ask for the tiles of the view it goes to, so they arrive while the
        zoom animation plays instead of after it (Leaflet names the target in `zoomanim`). */
    var prefetched = {}; // tile URL -> the promise of its body, for the next load
    var zoomed = false, dragged = false;
    function prefetchZoom(e) {
      note("zoomanim");
      zoomed = true;
      if (noLayers()) return;
      var asked = prefetched = {};
      var urls = tileUrls(map, tileKey(filters), { center: e.center, zoom: e.zoom });
      var held = 0;
      urls.forEach(function (url) {
        var read = ahead.take(url); // asked ahead while the view was still
        if (read) held += 1; else read = readJSON(url);
        read.catch(function () { /* the load asks again */ });
        prefetched[url] = read;
      });
      // What they show is made ready while the animation plays (prepare). Not once the load
      // at its end has begun: it took these reads over.
      var reads = Promise.all(urls.map(function (url) { return asked[url]; }));
      function ready(got) {
        if (prefetched !== asked) return;
        prepare(got[1], got[0], boundsAt(map, e.center, e.zoom));
        note("ready");
      }
      Promise.all([categoryNames(), reads]).then(function (got) {
        // All read ahead: in hand at once. Built after the animation's first frame, not
        // before it (that would hold back the animation's start).
        if (held === urls.length) requestAnimationFrame(function () { setTimeout(function () { ready(got); }, 0); });
        else ready(got);
      }, function () { /* the load asks again */ });
    }

    /** Zoomed out, live changes refresh the groups at most every few seconds. */
    var gridRefresh = null;
    function refreshGridSoon() {
      if (gridRefresh) return;
      gridRefresh = setTimeout(function () { gridRefresh = null; if (mode === "grid") load(true); }, 3000);
    }

    function applyLive(feature) {
      var p = feature && feature.properties;
      if (!p || !p.service_request_id || !feature.geometry) return;
      liveCount += 1;
      requestMarkers.remember(feature);
      if (mode === "grid") { refreshGridSoon(); return; }
      requestMarkers.applyLive(feature, filters);
      report();
    }

    function startLive() {
      if (options.live === false) return;
      P.liveStream(element, applyLive);
    }

    /** Where the requests matching the filters are (null on failure). */
    function fetchExtent() {
      if (noLayers()) {
        dataExtent = null;
        return Promise.resolve(null);
      }
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
        .bindTooltip(label || _("Chosen place"), { permanent: true, direction: "top", className: "place-label" })
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
    map.on("zoomstart", function () { zoomed = true; }); // also without animation
    map.on("movestart", function () { ahead.stop(); }); // a drag or a zoom: nothing more ahead
    map.on("dragend", function () { dragged = true; });
    map.on("zoomanim", prefetchZoom);
    if (options.onMapClick) map.on("click", function (e) { options.onMapClick(e.latlng); });
    // Escape closes an open request from anywhere in the map (Leaflet only listens while the
    // map itself has the focus, not a marker or the popup's own links).
    element.addEventListener("keydown", function (e) {
      if (e.key === "Escape" && map.closePopup) { requestMarkers.focus(null); map.closePopup(); }
    });
    fitControl(function () { viewChosen = true; fitToData(); }).addTo(map);
    if (centred) {
      load();
      // Only to say how many are elsewhere when this view has none.
      fetchExtent().then(function () { if (element.getAttribute("data-state") === "ready") report(); });
    } else {
      status(_("Finding the requests…"));
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
