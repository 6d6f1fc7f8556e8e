/* "Track my request": look a request up by the city's number or the prefixed id (asking when
   several feeds share the number), show it on a small map with its photo and timeline, and
   offer follow-by-email. */
(function () {
  "use strict";
  var C = window.C311;
  var _ = C._, _n = C._n;
  var cfg = C.config();
  var form = document.getElementById("track-form");
  var input = document.getElementById("track-id");
  var message = document.getElementById("track-message");
  var result = document.getElementById("track-result");
  var choices = document.getElementById("track-choices");
  var current = null;
  var smallMap = null;
  var pin = null;

  function row(dl, term, value) {
    if (!value) return;
    dl.appendChild(C.el("dt", { text: term }));
    dl.appendChild(C.el("dd", { text: value }));
  }

  /** A record's kind in words, capitalised: "Crime incident". */
  function itemWord(info) {
    return info.item.charAt(0).toUpperCase() + info.item.slice(1);
  }

  /** What a point event (a crime incident) is: what happened, when and near where, as its
      popup on the map says; no status, no "closed", nothing to follow (issue 17). */
  function incidentRows(dl, body, info) {
    row(dl, info.kindLabel, body.service_name || body.service_code);
    row(dl, _("When"), C.formatDate(body.requested_datetime));
    row(dl, _("Near"), body.address);
    row(dl, _("Department"), body.agency_responsible);
    row(dl, _("Dataset"), info.label);
    row(dl, _("%(label)s id", { label: info.idLabel }), body.service_request_id);
  }

  function show(answer) {
    // The API answers a GeoJSON Feature with the timeline and a few fields beside it.
    var body = Object.assign({}, answer.properties || {}, answer);
    var info = C.datasetInfo(body.dataset);
    current = body.service_request_id;
    document.getElementById("track-title").textContent = body.service_name || body.service_code ||
      (info.dataset === "311" ? _("Service request") : itemWord(info));
    var statusNode = document.getElementById("track-status");
    if (info.hasStatus) C.statusLine(statusNode, body.status, body.status_text, body.closed_reason);
    else C.clear(statusNode).appendChild(C.el("span", { className: "popup-kind", text: itemWord(info) }));
    Array.prototype.forEach.call(document.querySelectorAll("[data-lifecycle]"), function (node) { node.hidden = !info.hasStatus; });
    var dl = C.clear(document.getElementById("track-details"));
    if (info.hasStatus) {
      row(dl, _("Request id"), body.service_request_id);
      row(dl, _("Address"), body.address);
      row(dl, _("Department"), body.agency_responsible);
      C.timeRows(dl, body, row); // reported, then updated, then closed, in the city's zone
      row(dl, _("Latest notes"), body.status_notes);
    } else {
      incidentRows(dl, body, info);
    }
    document.getElementById("track-description").textContent = body.description || "";
    var photo = C.clear(document.getElementById("track-photo"));
    var figure = C.photoFigure(body.media_url);
    if (figure) photo.appendChild(figure);
    document.getElementById("track-full-map").setAttribute("href", "/" + C.query({ request: current }));
    // A crime incident's one "closed" entry is how it was stored, not a change: none is shown.
    if (info.hasStatus) C.renderTimeline(document.getElementById("track-timeline"), body.timeline);
    else C.clear(document.getElementById("track-timeline"));
    // The timeline as an Atom feed (issue 19), for the request shown (found by any number).
    Array.prototype.forEach.call(document.querySelectorAll("[data-feed-link]"), function (link) {
      link.setAttribute("href", "/feeds/requests/" + encodeURIComponent(current) + ".atom");
    });
    document.getElementById("follow-message").textContent = "";
    result.hidden = false;
    message.textContent = "";
    message.className = "message";
    showOnMap(answer.geometry && answer.geometry.coordinates, body);
  }

  /** The small map: the base map the site is configured with, one pin, centred on it. */
  function showOnMap(coords, body) {
    var box = document.getElementById("track-map");
    if (!coords || !window.L) { box.hidden = true; return; }
    box.hidden = false;
    var at = [coords[1], coords[0]];
    if (!smallMap) {
      smallMap = L.map(box, { center: at, zoom: 16, scrollWheelZoom: false });
      L.tileLayer(cfg.tileUrl, { attribution: cfg.tileAttribution, maxZoom: 19 }).addTo(smallMap);
    }
    smallMap.setView(at, 16);
    if (pin) pin.remove();
    var info = C.datasetInfo(body.dataset);
    // A crime incident is drawn as on the map (its triangle) and named without a status.
    var label = info.hasStatus
      ? (body.service_name || _("Service request")) + " (" + C.statusLabel(body.status) + ")"
      : (body.service_name || itemWord(info)) + " (" + info.item + ")";
    pin = L.marker(at, {
      icon: info.hasStatus
        ? L.divIcon({ className: "req-marker status-" + C.safeStatus(body.status), iconSize: [18, 18] })
        : L.divIcon({ className: "req-marker no-status symbol", html: C.datasetSymbol(body.dataset), iconSize: [22, 22] }),
      title: label,
      alt: label,
      keyboard: false
    }).addTo(smallMap);
    box.setAttribute("data-request-id", body.service_request_id || "");
    // The card was hidden while the map was made: let Leaflet measure it again.
    setTimeout(function () { smallMap.invalidateSize(); }, 0);
  }

  function pick(match) {
    var where = [match.address, match.agency_responsible].filter(Boolean).join(" · ");
    var info = C.datasetInfo(match.dataset);
    // A crime incident: when it happened, no status.
    var when = info.hasStatus
      ? _("%(dataset)s, %(status)s, reported %(date)s", {
        dataset: info.label, status: C.statusLabel(match.status), date: C.formatDate(match.requested_datetime)
      })
      : _("%(dataset)s, %(date)s", { dataset: info.label, date: C.formatDate(match.requested_datetime) });
    var text = (match.service_name || (info.hasStatus ? _("Service request") : itemWord(info))) +
      (where ? " — " + where : "") + " (" + when + ")";
    var button = C.el("button", { type: "button", className: "secondary", "data-request-id": match.service_request_id, text: text });
    button.addEventListener("click", function () {
      window.history.replaceState(null, "", "/track" + C.query({ id: match.service_request_id }));
      input.value = match.service_request_id;
      open(match.service_request_id);
    });
    return C.el("li", {}, [button]);
  }

  function offerChoice(number, matches) {
    C.clear(choices);
    matches.forEach(function (m) { choices.appendChild(pick(m)); });
    choices.hidden = false;
    message.className = "message";
    message.textContent = _n("%(count)s request has the number %(number)s: which one is yours?", "%(count)s requests have the number %(number)s: which one is yours?", matches.length, { number: number });
  }

  function failed(id, err) {
    message.textContent = err.status === 404
      ? _("No request with id or number %(id)s. Check the number in the city's confirmation (e.g. 56922334), or find the request on the map.", { id: id })
      : _("Could not look it up: %(reason)s", { reason: err.message });
    message.classList.add("error");
  }

  /** Show one request by its prefixed id. */
  function open(id) {
    choices.hidden = true;
    C.fetchJSON("/api/requests/" + encodeURIComponent(id))
      .then(show)
      .catch(function (err) { failed(id, err); });
  }

  /** Find what a typed number names: one request is shown, several are offered. */
  function lookup(id) {
    id = id.trim();
    if (!id) return;
    message.className = "message";
    message.textContent = _("Looking up %(id)s…", { id: id });
    result.hidden = true;
    choices.hidden = true;
    C.fetchJSON("/api/requests/lookup" + C.query({ number: id }))
      .then(function (body) {
        var matches = (body && body.matches) || [];
        if (!matches.length) { var none = new Error("not found"); none.status = 404; throw none; }
        if (matches.length === 1) return open(matches[0].service_request_id);
        offerChoice(body.number || id, matches);
      })
      .catch(function (err) { failed(id, err); });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var id = input.value.trim();
    window.history.replaceState(null, "", "/track" + C.query({ id: id }));
    lookup(id);
  });

  document.getElementById("follow-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var email = document.getElementById("follow-email");
    var out = document.getElementById("follow-message");
    out.className = "message";
    if (!email.value || !email.checkValidity()) {
      out.textContent = _("Please enter a valid email address.");
      out.classList.add("error");
      email.focus();
      return;
    }
    var button = document.getElementById("follow-submit");
    button.disabled = true;
    out.textContent = _("Sending…");
    C.fetchJSON("/api/subscriptions", {
      json: {
        email: email.value.trim(),
        target: { kind: "follow", service_request_id: current },
        filters: { service_codes: [], agencies: [], datasets: [], event_kinds: [] },
        delivery: "instant",
        label: _("Request %(id)s", { id: current }),
        language: C.lang // the emails are written in the page's language
      }
    }).then(function (body) {
      out.textContent = (body && body.message) || _("Check your inbox: we sent a link to confirm.");
      out.classList.add("success");
    }).catch(function (err) {
      out.textContent = _("Could not sign up: %(reason)s", { reason: err.message });
      out.classList.add("error");
    }).then(function () { button.disabled = false; });
  });

  if (cfg.requestId) {
    input.value = cfg.requestId;
    lookup(cfg.requestId);
  }
})();
