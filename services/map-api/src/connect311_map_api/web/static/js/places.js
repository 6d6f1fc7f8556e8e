/* Finding a place: address search over the city's own request addresses (plus the optional
   geocoder, server-side) as an accessible combobox, and "Use my location". */
(function () {
  "use strict";
  var C = window.C311;
  var MIN_CHARS = 3;
  var WAIT_MS = 250; // typing pauses this long before a search is sent

  /**
   * Wire one `[data-place-search]` block. onPick({lat, lng}, label) runs when a place is
   * chosen from the list (click, or arrows and Enter) or found by the browser's location;
   * the text it returns (if any) is announced in the search's status line.
   */
  function setupPlaceSearch(root, onPick) {
    var input = root.querySelector("[data-place-input]");
    var list = root.querySelector("[data-place-list]");
    var status = root.querySelector("[data-place-status]");
    var locate = root.querySelector("[data-place-locate]");
    var places = [];
    var active = -1;
    var timer = null;
    var seq = 0;

    function close() {
      list.hidden = true;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
      active = -1;
    }

    function highlight(index) {
      active = index;
      Array.prototype.forEach.call(list.children, function (li, i) {
        li.setAttribute("aria-selected", i === index ? "true" : "false");
        if (i === index) li.scrollIntoView({ block: "nearest" });
      });
      if (index >= 0) input.setAttribute("aria-activedescendant", list.children[index].id);
      else input.removeAttribute("aria-activedescendant");
    }

    function pick(index) {
      var place = places[index];
      if (!place) return;
      input.value = place.label;
      close();
      status.textContent = onPick(L.latLng(place.lat, place.long), place.label) || "";
    }

    function show(body) {
      places = (body && body.places) || [];
      C.clear(list);
      places.forEach(function (place, i) {
        var note = place.source === "requests"
          ? " (" + place.requests + " request" + (place.requests === 1 ? "" : "s") + ")"
          : "";
        var li = C.el("li", { id: list.id + "-" + i, role: "option", "aria-selected": "false", className: "place-option" }, [
          C.el("span", { text: place.label }),
          C.el("span", { className: "muted", text: note })
        ]);
        // mousedown, not click: the input keeps focus, so the list does not close first.
        li.addEventListener("mousedown", function (e) { e.preventDefault(); pick(i); });
        list.appendChild(li);
      });
      var open = places.length > 0;
      list.hidden = !open;
      input.setAttribute("aria-expanded", open ? "true" : "false");
      active = -1;
      var text = open
        ? places.length + " place" + (places.length === 1 ? "" : "s") + " found: use the arrow keys and Enter, or click one."
        : "No address found for “" + body.query + "”. Try the street name, or click the map.";
      if (body && body.geocoder === "unavailable") text += " (Only this city's own addresses were searched just now.)";
      status.textContent = text;
    }

    function search() {
      var text = input.value.trim();
      if (text.length < MIN_CHARS) {
        close();
        status.textContent = text ? "Type at least " + MIN_CHARS + " characters." : "";
        return;
      }
      var mine = ++seq;
      status.textContent = "Searching…";
      C.fetchJSON("/api/places" + C.query({ q: text }))
        .then(function (body) { if (mine === seq) show(body); })
        .catch(function (err) { if (mine === seq) { close(); status.textContent = "Search unavailable: " + err.message + ". Click the map instead."; } });
    }

    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(search, WAIT_MS);
    });
    input.addEventListener("keydown", function (e) {
      var n = places.length;
      if (e.key === "ArrowDown" && n) {
        e.preventDefault();
        if (list.hidden) { list.hidden = false; input.setAttribute("aria-expanded", "true"); }
        highlight((active + 1) % n);
      } else if (e.key === "ArrowUp" && n) {
        e.preventDefault();
        highlight(active <= 0 ? n - 1 : active - 1);
      } else if (e.key === "Enter") {
        e.preventDefault(); // never submits the surrounding form
        if (!list.hidden && n) pick(active >= 0 ? active : 0);
        else { clearTimeout(timer); search(); }
      } else if (e.key === "Escape") {
        if (!list.hidden) { e.preventDefault(); close(); }
      }
    });
    input.addEventListener("blur", function () { setTimeout(close, 150); });

    if (!navigator.geolocation) {
      locate.disabled = true;
      locate.title = "This browser cannot tell its location";
    }
    locate.addEventListener("click", function () {
      status.textContent = "Finding your location…";
      navigator.geolocation.getCurrentPosition(function (position) {
        var here = L.latLng(position.coords.latitude, position.coords.longitude);
        var said = onPick(here, "Your location");
        status.textContent = "Using your location (within about " + Math.round(position.coords.accuracy) + " m)." + (said ? " " + said : "");
      }, function (err) {
        status.textContent = "Could not get your location (" + (err.message || "permission denied") + "). Type an address instead.";
      }, { enableHighAccuracy: true, timeout: 10000, maximumAge: 60000 });
    });
    return { search: search };
  }

  window.C311.setupPlaceSearch = setupPlaceSearch;
})();
