/* Manage my alerts: list one person's alerts (by the signed token in their email link);
   change how often they arrive, the place (small map or address search), the radius and the
   filters; pause and resume; delete; see how each alert is told (email, webhook) and give a
   webhook a new signing secret, which also turns a turned-off one back on (issue 19).
   Every change answers with the new list, which is drawn again. */
(function () {
  "use strict";
  var C = window.C311;
  var _ = C._, _n = C._n;
  var cfg = C.config();
  var token = cfg.token || "";
  var list = document.getElementById("manage-list");
  var message = document.getElementById("manage-message");
  var DELIVERY = [["instant", _("As it happens")], ["hourly", _("Hourly digest")], ["daily", _("Daily digest")], ["weekly", _("Weekly digest")]];
  var RADII = [100, 250, 500, 1000, 2000, 5000];
  var url = "/api/subscriptions/manage" + C.query({ token: token });
  var feedsUrl = "/api/subscriptions/feeds" + C.query({ token: token });
  var feedUrls = {}; // subscription id -> its private Atom feed URL (issue 19)
  var rotateUrl = "/api/subscriptions/webhook/rotate" + C.query({ token: token });
  var freshSecret = null; // {id, secret}: a new webhook secret, shown in the next drawing only
  var categories = [];
  var agencies = [];

  function metres(m) {
    return m >= 1000 ? C.formatNumber(m / 1000) + " km" : C.formatNumber(Math.round(m)) + " m";
  }

  function describe(sub) {
    var target = sub.target || {};
    switch (target.kind) {
      case "circle": return _("Within %(distance)s of a point on the map", { distance: metres(target.radius_m) });
      case "area": return _("Inside an area you drew");
      case "corridor": return _("Along a route (%(width)s wide)", { width: metres(target.width_m) });
      case "follow": {
        var f = sub.followed;
        var id = target.service_request_id;
        if (!f) return _("Updates on request %(id)s", { id: id });
        var what = f.service_name || _("Service request");
        return f.address
          ? _("Updates on %(what)s at %(address)s (request %(id)s)", { what: what, address: f.address, id: id })
          : _("Updates on %(what)s (request %(id)s)", { what: what, id: id });
      }
      case "citywide": return _("Everywhere in the city");
      case "department_digest": return _("Daily digest of the overdue and oldest open requests of %(agency)s", { agency: target.agency });
      default: return _("Alert");
    }
  }

  function statusText(status, emails) {
    return {
      pending: _("waiting for you to confirm (see the email we sent)"),
      active: emails ? _("active: emails are on") : _("active: alerts go to the webhook only"),
      unsubscribed: _("paused: no emails until you resume"),
      disabled: _("stopped: emails to you could not be delivered (sign up again with an address that works)")
    }[status] || _("unknown");
  }

  function say(text, kind) {
    message.className = "message" + (kind ? " " + kind : "");
    message.textContent = text;
  }

  /** Send one change; on success draw the new list and say `done`. */
  function change(body, done, failed) {
    return C.fetchJSON(url, { json: body })
      .then(function (answer) { render(answer); say(done, "success"); })
      .catch(function (err) { say(_("%(failed)s: %(reason)s", { failed: failed, reason: err.message }), "error"); });
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
    var hint = C.el("p", { className: "hint", id: "place-hint-" + key, text: _("Click the map or search an address to move this alert.") });
    var box = C.el("div", { className: "track-map place-map", id: "place-map-" + key, role: "region", "aria-label": _("Where this alert is") });
    var input = C.el("input", {
      type: "search", id: "place-" + key, maxlength: "100", autocomplete: "off", spellcheck: "false",
      role: "combobox", "aria-autocomplete": "list", "aria-expanded": "false",
      "aria-controls": "place-list-" + key, "aria-describedby": "place-status-" + key,
      placeholder: _("e.g. 100 Central Ave"), "data-place-input": ""
    });
    var locate = C.el("button", { type: "button", className: "secondary", text: _("Use my location"), "data-place-locate": "" });
    var found = C.el("ul", { id: "place-list-" + key, className: "place-list", role: "listbox", "aria-label": _("Places found"), hidden: true, "data-place-list": "" });
    var said = C.el("p", { id: "place-status-" + key, className: "hint", role: "status", "aria-live": "polite", "data-place-status": "" });
    var search = C.el("div", { className: "place-search", "data-place-search": "" }, [
      C.el("label", { for: "place-" + key, text: _("Move to an address") }),
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
      // The whole circle in view, whatever the radius (a 1 km one overflowed zoom 15).
      var fit = function () { map.fitBounds(ring.getBounds(), { padding: [8, 8], maxZoom: 17, animate: false }); };
      fit();
      map.on("click", function (e) { moveTo(e.latlng); say(_("Place moved on the map: press “Update this alert” to save it.")); });
      return function (m) { ring.setRadius(m); fit(); };
    }
    window.C311.setupPlaceSearch(search, function (latlng, label) {
      moveTo(latlng);
      return _("Moved to %(place)s: press “Update this alert” to save it.", { place: label });
    });
    return {
      fields: [C.el("p", { className: "label-like", text: _("Place") }), hint, box, search],
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
      fields.push(C.el("label", { for: "radius-" + key, text: _("Radius") }), radius);
    }
    // A followed request, or a department digest (its department is what it is for): no filters.
    if (target.kind !== "follow" && target.kind !== "department_digest") {
      category = selectOf("category-" + key, categories, (filters.service_codes || [])[0] || "", _("Every category"));
      agency = selectOf("agency-" + key, agencies, (filters.agencies || [])[0] || "", _("Every department"));
      fields.push(C.el("label", { for: "category-" + key, text: _("Category") }), category,
        C.el("label", { for: "agency-" + key, text: _("Department") }), agency);
    }
    if (!fields.length) return null;
    var save = C.el("button", { type: "button", className: "secondary", text: _("Update this alert") });
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
      change(body, sub.label
        ? _("Saved: %(label)s now uses the new settings.", { label: sub.label })
        : _("Saved: your alert now uses the new settings."), _("Could not save"));
    });
    fields.push(C.el("div", { className: "buttons" }, [save]));
    var box = C.el("fieldset", { className: "edit" }, [C.el("legend", { text: _("What this alert covers") })].concat(fields));
    if (place) {
      box.drawPlace = function () {
        var setRadius = place.draw(function () { return Number(radius.value); });
        radius.addEventListener("change", function () { setRadius(Number(radius.value)); });
      };
    }
    return box;
  }

  function keepFeeds(body) {
    ((body && body.feeds) || []).forEach(function (f) { feedUrls[f.subscription_id] = f.feed_url; });
  }

  /** The alert's private feed address, and a button that replaces it (the old one stops). */
  function feedBox(id, key) {
    var field = C.el("input", { type: "text", id: "feed-" + key, readonly: "", value: feedUrls[id], "aria-describedby": "feed-hint-" + key });
    var open = C.el("a", { href: feedUrls[id], type: "application/atom+xml", text: _("Open the feed") });
    var renew = C.el("button", { type: "button", className: "secondary", text: _("Make a new feed address") });
    renew.addEventListener("click", function () {
      C.fetchJSON(feedsUrl, { json: { subscription_id: id } }).then(function (body) {
        keepFeeds(body);
        field.value = feedUrls[id];
        open.setAttribute("href", feedUrls[id]);
        say(_("New feed address made: the old one no longer works."), "success");
      }).catch(function (err) { say(_("Could not make a new feed address: %(reason)s", { reason: err.message }), "error"); });
    });
    return C.el("div", { className: "feed-address stack" }, [
      C.el("label", { for: "feed-" + key, text: _("Private feed (Atom) of this alert") }),
      C.el("p", { className: "hint", id: "feed-hint-" + key, text: _("A feed reader shows what this alert's emails carry. Anyone with this address can read it: make a new one to stop the old.") }),
      field,
      C.el("div", { className: "buttons" }, [open, renew])
    ]);
  }

  function channelsText(sub) {
    if (!sub.webhook) return _("Told by: email");
    return sub.email_alerts === false ? _("Told by: webhook only") : _("Told by: email and webhook");
  }

  /** Whether the notifier has seen the webhook work with its current secret, in plain words
      (the date as the page's language writes it, in the city's time zone). */
  function webhookCheck(hook) {
    if (hook.verified_at) {
      return C.el("p", { className: "muted", "data-webhook-check": "checked",
        text: _("Webhook checked: delivered on %(date)s.", { date: C.formatDate(hook.verified_at) }) });
    }
    return C.el("p", { className: "muted", "data-webhook-check": "unchecked",
      text: hook.format === "standard"
        ? _("Webhook not checked yet: it is checked before its next alert.")
        : _("Webhook not checked yet: its next alert shows whether it works.") });
  }

  /** The alert's webhook: its host only (a Slack or Teams URL is itself a secret), its
      format, state and check, and the button that makes a new secret (and turns it back on). */
  function webhookBox(sub, key) {
    var hook = sub.webhook;
    var on = hook.enabled !== false;
    var button = C.el("button", { type: "button", className: "secondary", "aria-describedby": "hook-hint-" + key,
      text: on ? _("Rotate the secret") : _("Turn the webhook back on") });
    button.addEventListener("click", function () {
      button.disabled = true;
      C.fetchJSON(rotateUrl, { json: { subscription_id: sub.subscription_id } }).then(function (issued) {
        freshSecret = { id: sub.subscription_id, secret: issued.secret };
        return C.fetchJSON(url).then(function (body) {
          render(body);
          say(on ? _("New secret made: the old one keeps signing beside it for 24 hours.")
            : _("The webhook is back on, with a new secret. It is checked again before its next alert."), "success");
          var box = document.getElementById("secret-" + key + "-box");
          if (box) box.focus(); // shown only now: take the reader to it
        });
      }).catch(function (err) {
        button.disabled = false;
        say(_("Could not make a new secret: %(reason)s", { reason: err.message }), "error");
      });
    });
    var box = C.el("div", { className: "webhook-box stack", "data-webhook": on ? "on" : "off" }, [
      C.el("p", { text: _("Webhook: %(host)s (%(format)s)", { host: C.webhookHost(hook.url), format: C.webhookFormatName(hook.format) }) }),
      C.el("p", { className: on ? "muted" : "status-paused",
        text: on ? _("Webhook on.") : _("Webhook turned off: deliveries kept failing (or the receiver answered 410 Gone). Fix the receiver, then turn it back on.") }),
      on ? webhookCheck(hook) : null,
      C.el("p", { className: "hint", id: "hook-hint-" + key,
        text: on ? _("A new secret replaces this one; the old one keeps signing beside it for 24 hours, so your receiver can switch.")
          : _("Turning it back on makes a new secret (shown once).") }),
      C.el("div", { className: "buttons" }, [button])
    ]);
    if (freshSecret && freshSecret.id === sub.subscription_id) box.appendChild(C.secretBox(freshSecret.secret, key));
    return box;
  }

  function item(sub) {
    var id = sub.subscription_id;
    var key = id.replace(/[^A-Za-z0-9_-]/g, "");
    // A department digest is daily by nature: the only choice shown is the one it has.
    var choices = sub.target.kind === "department_digest" ? DELIVERY.filter(function (d) { return d[0] === "daily"; }) : DELIVERY;
    var delivery = selectOf("delivery-" + key, choices.map(function (d) { return { value: d[0], label: d[1] }; }), sub.delivery);
    var filters = sub.filters || {};
    var narrowing = [].concat(filters.service_codes || [], filters.agencies || [], filters.datasets || []);
    var li = C.el("li", { className: "card sub-item", "data-subscription-id": id, "data-status": sub.status }, [
      C.el("h2", { className: "h-small", text: sub.label || describe(sub) }),
      C.el("p", { text: describe(sub) + (narrowing.length ? " · " + _("only %(filters)s", { filters: narrowing.join(", ") }) : "") }),
      C.el("p", { className: sub.status === "active" ? "muted" : "status-paused", text: _("Status: %(status)s", { status: statusText(sub.status, sub.email_alerts !== false) }) }),
      C.el("p", { className: "channels", text: channelsText(sub) }),
      C.el("label", { for: "delivery-" + key, text: _("How often") }),
      delivery
    ]);
    var save = C.el("button", { type: "button", text: _("Save") });
    save.addEventListener("click", function () {
      change({ action: "set_delivery", subscription_id: id, delivery: delivery.value }, _("Saved."), _("Could not save"));
    });
    var buttons = [save];
    if (sub.status === "active") {
      var stop = C.el("button", { type: "button", className: "secondary", text: _("Pause these emails") });
      stop.addEventListener("click", function () {
        change({ action: "unsubscribe", subscription_id: id }, _("Paused: you will get no emails for this alert until you resume it."), _("Could not pause"));
      });
      buttons.push(stop);
    } else if (sub.status === "unsubscribed") {
      var resume = C.el("button", { type: "button", className: "secondary", text: _("Resume these emails") });
      resume.addEventListener("click", function () {
        change({ action: "resume", subscription_id: id }, _("Resumed: emails for this alert are on again."), _("Could not resume"));
      });
      buttons.push(resume);
    }
    var del = C.el("button", { type: "button", className: "danger", text: _("Delete this alert") });
    del.addEventListener("click", function () {
      change({ action: "delete", subscription_id: id }, _("Alert deleted."), _("Could not delete"));
    });
    buttons.push(del);
    li.appendChild(C.el("div", { className: "buttons" }, buttons));
    if (sub.webhook) li.appendChild(webhookBox(sub, key));
    if (feedUrls[id]) li.appendChild(feedBox(id, key));
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
    freshSecret = null; // shown once: the next drawing (any change) no longer has it
    return subs;
  }

  if (!token) {
    say(_("This page needs the link from one of our emails (it carries your personal key)."), "error");
    return;
  }
  // The category and department lists are only for the editor: without them it offers "Every".
  Promise.all([
    C.loadCategories().catch(function () { return []; }),
    C.loadAgencies().catch(function () { return []; })
  ]).then(function (loaded) {
    categories = loaded[0];
    agencies = loaded[1];
    // The feed addresses are extra: without them the alerts still show.
    return Promise.all([C.fetchJSON(url), C.fetchJSON(feedsUrl).then(keepFeeds, function () {})]);
  }).then(function (got) {
    var subs = render(got[0]);
    say(subs.length ? _n("You have %(count)s alert.", "You have %(count)s alerts.", subs.length) : _("You have no alerts."));
  }).catch(function (err) {
    say(err.status === 400 || err.status === 403 || err.status === 404
      ? _("This link is invalid or has expired. Open the newest email from us, or sign up again.")
      : _("Could not load your alerts: %(reason)s", { reason: err.message }), "error");
  });
})();
