/* How the request map (mapview.js) reads the server besides its tiles' URLs: a read that
   waits out a rate limit once, and the live stream of changed requests. */
(function () {
  "use strict";
  var C = window.C311;
  var _ = C._;
  var MAX_RETRY_WAIT_S = 10; // a longer Retry-After is cut short: the view retries once, then says why

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

  /** A map's JSON reader, readJSON(url, signal, fresh). Public reads are rate-limited per
      client (429 + Retry-After): it waits as told (bounded) and tries once more, saying so
      (the map `element`'s data-state, `status(text)`), rather than failing the view. */
  function retryingReader(element, status) {
    return function readJSON(url, signal, fresh) {
      // fresh: revalidate with the server (ETag) instead of the browser's cached tile.
      var opts = fresh ? { signal: signal, cache: "no-cache" } : { signal: signal };
      return C.fetchJSON(url, opts).catch(function (err) {
        if (err.status !== 429 || (signal && signal.aborted)) throw err;
        var seconds = Number(err.retryAfter);
        if (!(seconds >= 0)) seconds = 1;
        element.setAttribute("data-state", "busy");
        status(_("Busy — retrying…"));
        return pause(Math.min(seconds, MAX_RETRY_WAIT_S) * 1000, signal).then(function () {
          return C.fetchJSON(url, opts);
        });
      });
    };
  }

  /** The live stream (/api/stream): each changed request to onFeature(feature); its state
      on the map `element` (data-live). */
  function liveStream(element, onFeature) {
    if (!window.EventSource) return;
    var source = new EventSource("/api/stream");
    source.addEventListener("request", function (event) {
      try { onFeature(JSON.parse(event.data)); } catch (e) { /* a bad event is skipped */ }
    });
    source.addEventListener("open", function () { element.setAttribute("data-live", "connected"); });
    source.addEventListener("error", function () { element.setAttribute("data-live", "reconnecting"); });
  }

  window.C311.mapParts = Object.assign(window.C311.mapParts || {}, {
    MAX_RETRY_WAIT_S: MAX_RETRY_WAIT_S,
    liveStream: liveStream,
    retryingReader: retryingReader
  });
})();
