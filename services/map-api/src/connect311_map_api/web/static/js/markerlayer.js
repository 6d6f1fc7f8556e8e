/* The request map's markers (mapview.js's; after mapparts.js): one MarkerCluster group of
   request markers, kept across views (a pan redraws only what it uncovers), the live
   stream's newer copies of requests, markers made ready while a zoom plays, and the request
   the page was opened for. */
(function () {
  "use strict";
  var C = window.C311;
  var P = C.mapParts;
  var clusterIcon = P.clusterIcon, markerFor = P.markerFor, matches = P.matches;

  function sameSpot(a, b) {
    var pa = a.properties || {}, pb = b.properties || {};
    var ca = a.geometry.coordinates, cb = b.geometry.coordinates;
    return pa.status === pb.status && ca[0] === cb[0] && ca[1] === cb[1];
  }

  /** The markers of `map`; `still`: no animations; onChunked(): MarkerCluster has added the
      last chunk of markers (chunkedLoading), for the paint mark (mapview.js markPainted). */
  function markerLayer(map, still, onChunked) {
    var markers = {}; // service_request_id -> marker in the cluster group
    var live = {}; // service_request_id -> its latest live feature (newer than a cached tile)
    var ready = {}; // service_request_id -> its marker, made while a zoom played
    var chunking = false;
    var cluster = clusterGroup();

    function clusterGroup() {
      var group = L.markerClusterGroup({
        maxClusterRadius: 50, showCoverageOnHover: false, chunkedLoading: true,
        iconCreateFunction: clusterIcon, animate: !still,
        chunkProgress: function (done, total) {
          if (group !== cluster) return; // a group replaced while it was adding (place)
          chunking = done < total;
          if (!chunking) onChunked();
        }
      });
      return group;
    }

    /** Show these features: markers already shown and unchanged stay (a pan redraws only
        what it uncovers); one id is one marker, whichever tiles sent it. */
    function place(features, withLive, filters) {
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
      if (drop.length && !Object.keys(markers).length) {
        // All of them (zoomed out to groups): a new, empty MarkerCluster group instead of
        // unhooking a few thousand markers from the old one (~100 ms).
        var shownNow = map.hasLayer(cluster);
        if (shownNow) map.removeLayer(cluster);
        cluster = clusterGroup();
        chunking = false;
        if (shownNow) cluster.addTo(map);
      } else if (drop.length) cluster.removeLayers(drop);
      var made = ready; // markers made while a zoom played (prepare)
      ready = {};
      var add = Object.keys(next).map(function (id) {
        var m = made[id] && !live[id] && sameSpot(next[id], made[id].feature) ? made[id] : markerFor(next[id]);
        markers[id] = m;
        return m;
      });
      if (add.length) cluster.addLayers(add);
    }

    /** While a zoom plays: make the markers of the view it goes to (MarkerCluster adds them
        at its end, in place). */
    function prepare(features) {
      ready = {};
      features.forEach(function (f) {
        var id = f.properties.service_request_id;
        if (!markers[id] && !live[id]) ready[id] = markerFor(f);
      });
    }

    /** A live change where markers are shown: add, move, recolour or drop its marker. */
    function applyLive(feature, filters) {
      var p = feature.properties;
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
    }

    /** Markers inside the view (tiles reach beyond it), also counted by dataset. */
    function countShown() {
      var b = map.getBounds();
      var inView = Object.keys(markers).filter(function (id) { return b.contains(markers[id].getLatLng()); });
      var byDataset = {};
      inView.forEach(function (id) {
        var d = (markers[id].feature.properties || {}).dataset;
        byDataset[d] = (byDataset[d] || 0) + 1;
      });
      return { count: inView.length, byDataset: byDataset };
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

    return {
      place: place,
      prepare: prepare,
      applyLive: applyLive,
      countShown: countShown,
      openFocused: function () { openFocused(); },
      /** Open this request's popup once its marker is drawn (null: none). */
      focus: function (id) { focusId = id; },
      /** Remember a live change (newer than the tiles) for the loads to come. */
      remember: function (feature) { live[feature.properties.service_request_id] = feature; },
      /** On the map (markers or mixed) or off it (groups only). */
      show: function (on) { if (on) cluster.addTo(map); else map.removeLayer(cluster); },
      chunking: function () { return chunking; },
      features: function () { return Object.keys(markers).map(function (id) { return markers[id].feature; }); }
    };
  }

  window.C311.mapParts = Object.assign(window.C311.mapParts || {}, { markerLayer: markerLayer });
})();
