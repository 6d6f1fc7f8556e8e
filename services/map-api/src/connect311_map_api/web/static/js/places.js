/* Finding a place: address search over the city's own request addresses (plus the optional
   geocoder, server-side) as an accessible combobox, and "Use my location". */
(function () {
  "use strict";
  var C = window.C311;
  var _ = C._, _n = C._n;
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
          ? " (" + _n("%(count)s request", "%(count)s requests", place.requests) + ")"
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
        ? _n("%(count)s place found: use the arrow keys and Enter, or click one.", "%(count)s places found: use the arrow keys and Enter, or click one.", places.length)
        : _("No address found for “%(query)s”. Try the street name, or click the map.", { query: body.query });
      if (body && body.geocoder === "unavailable") text += " " + _("(Only this city's own addresses were searched just now.)");
      status.textContent = text;
    }

    function search() {
      var text = input.value.trim();
      if (text.length < MIN_CHARS) {
        close();
        status.textContent = text ? _("Type at least %(count)s characters.", { count: MIN_CHARS }) : "";
        return;
      }
      var mine = ++seq;
      status.textContent = _("Searching…");
      C.fetchJSON("/api/places" + C.query({ q: text }))
        .then(function (body) { if (mine === seq) show(body); })
        .catch(function (err) { if (mine === seq) { close(); status.textContent = _("Search unavailable: %(reason)s. Click the map instead.", { reason: err.message }); } });
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
      locate.title = _("This browser cannot tell its location");
    }
    locate.addEventListener("click", function () {
      status.textContent = _("Finding your location…");
      navigator.geolocation.getCurrentPosition(function (position) {
        var here = L.latLng(position.coords.latitude, position.coords.longitude);
        var said = onPick(here, _("Your location"));
        status.textContent = _("Using your location (within about %(metres)s m).", { metres: C.formatNumber(Math.round(position.coords.accuracy)) }) + (said ? " " + said : "");
      }, function (err) {
        var reason = err.message || _("permission denied");
        status.textContent = _("Could not get your location (%(reason)s). Type an address instead.", { reason: reason });
      }, { enableHighAccuracy: true, timeout: 10000, maximumAge: 60000 });
    });
    return { search: search };
  }

  window.C311.setupPlaceSearch = setupPlaceSearch;
})();
