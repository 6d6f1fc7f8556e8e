/* Manage my alerts: list one person's alerts (by the signed token in their email link);
   change how often they arrive, the place (small map or address search), the radius and the
   filters; pause and resume; delete.
   Every change answers with the new list, which is drawn again. */
(function () {
  "use strict";
  var C = window.C311;
  var cfg = C.config();
  var token = cfg.token || "";
  var list = document.getElementById("manage-list");
  var message = document.getElementById("manage-message");
  var DELIVERY = [["instant", "As it happens"], ["hourly", "Hourly digest"], ["daily", "Daily digest"], ["weekly", "Weekly digest"]];
  var RADII = [100, 250, 500, 1000, 2000, 5000];
  var url = "/api/subscriptions/manage" + C.query({ token: token });
  var categories = [];
  var agencies = [];

  function metres(m) {
    return m >= 1000 ? (m / 1000) + " km" : Math.round(m) + " m";
  }

  function describe(sub) {
    var target = sub.target || {};
    switch (target.kind) {
      case "circle": return "Within " + metres(target.radius_m) + " of a point on the map";
      case "area": return "Inside an area you drew";
      case "corridor": return "Along a route (" + metres(target.width_m) + " wide)";
      case "follow": {
        var f = sub.followed;
        var what = f ? (f.service_name || "Service request") + (f.address ? " at " + f.address : "") : null;
        return "Updates on " + (what ? what + " (request " + target.service_request_id + ")" : "request " + target.service_request_id);
      }
      case "citywide": return "Everywhere in the city";
      default: return "Alert";
    }
  }

  function statusText(status) {
    return {
      pending: "waiting for you to confirm (see the email we sent)",
      active: "active: emails are on",
      unsubscribed: "paused: no emails until you resume",
      disabled: "stopped: emails to you could not be delivered (sign up again with an address that works)"
    }[status] || "unknown";
  }

  function say(text, kind) {
    message.className = "message" + (kind ? " " + kind : "");
    message.textContent = text;
  }

  /** Send one change; on success draw the new list and say `done`. */
  function change(body, done, failed) {
    return C.fetchJSON(url, { json: body })
      .then(function (answer) { render(answer); say(done, "success"); })
      .catch(function (err) { say(failed + ": " + err.message, "error"); });
  }

  function selectOf(id, options, current, anyLabel) {
    var select = C.el("select", { id: id });
    if (anyLabel) select.appendChild(C.el("option", { value: "", text: anyLabel }));
    options.forEach(function (o) {
      var option = C.el("option", { value: o.value, text: o.label });
      if (String(current) === String(o.value)) option.selected = true;
      select.appendChild(option);
    });
    if (current && !options.some(function (o) { return String(o.value) === String(current); })) {
      select.appendChild(C.el("option", { value: current, text: current, selected: true }));
    }
    return select;
  }

  /** The place of a circle alert: a small map (click to move the point) and the address
      search. Returns the fields and a getter for the (possibly moved) point. */
  function placeEditor(target, key) {
    var point = { lat: target.lat, long: target.long };
    var hint = C.el("p", { className: "hint", id: "place-hint-" + key, text: "Click the map or search an address to move this alert." });
    var box = C.el("div", { className: "track-map place-map", id: "place-map-" + key, role: "region", "aria-label": "Where this alert is" });
    var input = C.el("input", {
      type: "search", id: "place-" + key, maxlength: "100", autocomplete: "off", spellcheck: "false",
      role: "combobox", "aria-autocomplete": "list", "aria-expanded": "false",
      "aria-controls": "place-list-" + key, "aria-describedby": "place-status-" + key,
      placeholder: "e.g. 100 Central Ave", "data-place-input": ""
    });
    var locate = C.el("button", { type: "button", className: "secondary", text: "Use my location", "data-place-locate": "" });
    var found = C.el("ul", { id: "place-list-" + key, className: "place-list", role: "listbox", "aria-label": "Places found", hidden: true, "data-place-list": "" });
    var said = C.el("p", { id: "place-status-" + key, className: "hint", role: "status", "aria-live": "polite", "data-place-status": "" });
    var search = C.el("div", { className: "place-search", "data-place-search": "" }, [
      C.el("label", { for: "place-" + key, text: "Move to an address" }),
      C.el("div", { className: "place-row" }, [input, locate]), found, said
    ]);
    var map = null, pin = null, ring = null;
    function moveTo(latlng) {
      point = { lat: Number(latlng.lat.toFixed(6)), long: Number(latlng.lng.toFixed(6)) };
      box.setAttribute("data-point", point.lat + "," + point.long);
      if (map) {
        pin.setLatLng(latlng);
        ring.setLatLng(latlng);
        map.panTo(latlng);
      }
    }
    box.setAttribute("data-point", point.lat + "," + point.long);
    // Drawn once the card is in the page (Leaflet measures its box).
    function draw(radiusOf) {
      var cfg = C.config();
      var at = L.latLng(point.lat, point.long);
      map = L.map(box, { center: at, zoom: 15, scrollWheelZoom: false });
      L.tileLayer(cfg.tileUrl, { attribution: cfg.tileAttribution, maxZoom: 19 }).addTo(map);
      ring = L.circle(at, { radius: radiusOf(), className: "alert-circle" }).addTo(map);
      pin = L.circleMarker(at, { radius: 7, className: "place-pin", weight: 3 }).addTo(map);
      map.on("click", function (e) { moveTo(e.latlng); say("Place moved on the map: press “Update this alert” to save it."); });
      return function (m) { ring.setRadius(m); };
    }
    window.C311.setupPlaceSearch(search, function (latlng, label) {
      moveTo(latlng);
      return "Moved to " + label + ": press “Update this alert” to save it.";
    });
    return {
      fields: [C.el("p", { className: "label-like", text: "Place" }), hint, box, search],
      draw: draw,
      point: function () { return point; },
      moved: function () { return point.lat !== target.lat || point.long !== target.long; }
    };
  }

  /** Place and radius (a circle alert) and category/department (any but a followed request). */
  function editor(sub, key) {
    var target = sub.target || {};
    var filters = sub.filters || {};
    var fields = [];
    var radius = null, category = null, agency = null, place = null;
    if (target.kind === "circle") {
      place = placeEditor(target, key);
      fields = fields.concat(place.fields);
      var radii = RADII.map(function (m) { return { value: m, label: metres(m) }; });
      radius = selectOf("radius-" + key, radii, target.radius_m);
      fields.push(C.el("label", { for: "radius-" + key, text: "Radius" }), radius);
    }
    if (target.kind !== "follow") {
      category = selectOf("category-" + key, categories, (filters.service_codes || [])[0] || "", "Every category");
      agency = selectOf("agency-" + key, agencies, (filters.agencies || [])[0] || "", "Every department");
      fields.push(C.el("label", { for: "category-" + key, text: "Category" }), category,
        C.el("label", { for: "agency-" + key, text: "Department" }), agency);
    }
    if (!fields.length) return null;
    var save = C.el("button", { type: "button", className: "secondary", text: "Update this alert" });
    save.addEventListener("click", function () {
      var body = { action: "edit", subscription_id: sub.subscription_id };
      if (radius) body.radius_m = Number(radius.value);
      if (place && place.moved()) { body.lat = place.point().lat; body.long = place.point().long; }
      if (category) {
        body.filters = {
          service_codes: category.value ? [category.value] : [],
          agencies: agency.value ? [agency.value] : [],
          datasets: filters.datasets || [],
          event_kinds: filters.event_kinds || []
        };
      }
      change(body, "Saved: " + (sub.label || "your alert") + " now uses the new settings.", "Could not save");
    });
    fields.push(C.el("div", { className: "buttons" }, [save]));
    var box = C.el("fieldset", { className: "edit" }, [C.el("legend", { text: "What this alert covers" })].concat(fields));
    if (place) {
      box.drawPlace = function () {
        var setRadius = place.draw(function () { return Number(radius.value); });
        radius.addEventListener("change", function () { setRadius(Number(radius.value)); });
      };
    }
    return box;
  }

  function item(sub) {
    var id = sub.subscription_id;
    var key = id.replace(/[^A-Za-z0-9_-]/g, "");
    var delivery = selectOf("delivery-" + key, DELIVERY.map(function (d) { return { value: d[0], label: d[1] }; }), sub.delivery);
    var filters = sub.filters || {};
    var narrowing = [].concat(filters.service_codes || [], filters.agencies || [], filters.datasets || []);
    var li = C.el("li", { className: "card sub-item", "data-subscription-id": id, "data-status": sub.status }, [
      C.el("h2", { className: "h-small", text: sub.label || describe(sub) }),
      C.el("p", { text: describe(sub) + (narrowing.length ? " · only " + narrowing.join(", ") : "") }),
      C.el("p", { className: sub.status === "active" ? "muted" : "status-paused", text: "Status: " + statusText(sub.status) }),
      C.el("label", { for: "delivery-" + key, text: "How often" }),
      delivery
    ]);
    var save = C.el("button", { type: "button", text: "Save" });
    save.addEventListener("click", function () {
      change({ action: "set_delivery", subscription_id: id, delivery: delivery.value }, "Saved.", "Could not save");
    });
    var buttons = [save];
    if (sub.status === "active") {
      var stop = C.el("button", { type: "button", className: "secondary", text: "Pause these emails" });
      stop.addEventListener("click", function () {
        change({ action: "unsubscribe", subscription_id: id }, "Paused: you will get no emails for this alert until you resume it.", "Could not pause");
      });
      buttons.push(stop);
    } else if (sub.status === "unsubscribed") {
      var resume = C.el("button", { type: "button", className: "secondary", text: "Resume these emails" });
      resume.addEventListener("click", function () {
        change({ action: "resume", subscription_id: id }, "Resumed: emails for this alert are on again.", "Could not resume");
      });
      buttons.push(resume);
    }
    var del = C.el("button", { type: "button", className: "danger", text: "Delete this alert" });
    del.addEventListener("click", function () {
      change({ action: "delete", subscription_id: id }, "Alert deleted.", "Could not delete");
    });
    buttons.push(del);
    li.appendChild(C.el("div", { className: "buttons" }, buttons));
    var edit = editor(sub, key);
    if (edit) li.appendChild(edit);
    li.drawPlace = edit && edit.drawPlace;
    return li;
  }

  function render(body) {
    var subs = Array.isArray(body) ? body : (body && body.subscriptions) || [];
    C.clear(list);
    subs.forEach(function (s) {
      var li = item(s);
      list.appendChild(li);
      if (li.drawPlace && window.L) li.drawPlace(); // maps need their box in the page
    });
    return subs;
  }

  if (!token) {
    say("This page needs the link from one of our emails (it carries your personal key).", "error");
    return;
  }
  // The category and department lists are only for the editor: without them it offers "Every".
  Promise.all([
    C.loadCategories().catch(function () { return []; }),
    C.loadAgencies().catch(function () { return []; })
  ]).then(function (loaded) {
    categories = loaded[0];
    agencies = loaded[1];
    return C.fetchJSON(url);
  }).then(function (body) {
    var subs = render(body);
    say(subs.length ? "You have " + subs.length + " alert" + (subs.length === 1 ? "" : "s") + "." : "You have no alerts.");
  }).catch(function (err) {
    say(err.status === 400 || err.status === 403 || err.status === 404
      ? "This link is invalid or has expired. Open the newest email from us, or sign up again."
      : "Could not load your alerts: " + err.message, "error");
  });
})();
