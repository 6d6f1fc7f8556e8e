/* The request map's zoom-in tiles read ahead while a view stays still (after maptiles.js). */
(function () {
  "use strict";
  var C = window.C311;
  var tileUrls = C.mapParts.tileUrls;

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

  window.C311.mapParts = Object.assign(window.C311.mapParts || {}, {
    tilesAhead: tilesAhead
  });
})();
