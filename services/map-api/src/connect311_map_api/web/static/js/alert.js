/* "Alert me": pick a point and radius (live circle preview) or draw an area, see how many
   alerts it would have sent, choose email and/or a webhook, enter an email, and get the
   confirmation message (and, with a webhook, its signing secret, shown this once). */
(function () {
  "use strict";
  var C = window.C311;
  var _ = C._, _n = C._n;
  var MIN_R = 50, MAX_R = 10000;

  /** Slider position (0..100) to a radius in metres on a log scale, rounded to a nice value. */
  function radiusFromSlider(v) {
    var r = MIN_R * Math.pow(MAX_R / MIN_R, Number(v) / 100);
    var step = r < 200 ? 10 : r < 1000 ? 50 : r < 5000 ? 100 : 500;
    return Math.max(MIN_R, Math.min(MAX_R, Math.round(r / step) * step));
  }

  function formatRadius(r) {
    return r < 1000 ? C.formatNumber(r) + " m" : C.formatNumber(Math.round(r / 100) / 10) + " km";
  }

  function byId(id) { return document.getElementById(id); }

  /** Wire the alert panel to a request map (from createRequestMap). */
  function setupAlert(requestMap) {
    var map = requestMap.map;
    var form = byId("alert-form");
    var start = byId("alert-start");
    var radius = byId("alert-radius");
    var radiusOut = byId("alert-radius-out");
    var preview = byId("alert-preview");
    var message = byId("alert-message");
    var areaCount = byId("alert-area-count");
    var layer = L.layerGroup().addTo(map);
    var state = { active: false, mode: "circle", point: null, vertices: [] };
    var previewTimer = null;
    var previewSeq = 0;

    function radiusM() { return radiusFromSlider(radius.value); }

    function draw() {
      layer.clearLayers();
      if (!state.active) return;
      if (state.mode === "circle" && state.point) {
        L.circle(state.point, { radius: radiusM(), className: "alert-circle", weight: 2 }).addTo(layer);
        L.circleMarker(state.point, { radius: 5, className: "alert-centre" }).addTo(layer);
      }
      if (state.mode === "area" && state.vertices.length) {
        var shape = state.vertices.length >= 3 ? L.polygon(state.vertices, { className: "alert-area" }) : L.polyline(state.vertices, { className: "alert-area" });
        shape.addTo(layer);
        state.vertices.forEach(function (v) { L.circleMarker(v, { radius: 4, className: "alert-vertex" }).addTo(layer); });
      }
      var n = state.vertices.length;
      areaCount.textContent = n === 0 ? _("No points yet.") : _n("%(count)s point", "%(count)s points", n) + " – " +
        (n < 3 ? _n("add %(count)s more", "add %(count)s more", 3 - n) : _("area ready"));
    }

    function target() {
      if (state.mode === "circle") {
        if (!state.point) return null;
        return { kind: "circle", lat: +state.point.lat.toFixed(6), long: +state.point.lng.toFixed(6), radius_m: radiusM() };
      }
      if (state.vertices.length < 3) return null;
      var ring = state.vertices.map(function (v) { return [+v.lng.toFixed(6), +v.lat.toFixed(6)]; });
      ring.push(ring[0]);
      return { kind: "area", geometry: { type: "Polygon", coordinates: [ring] } };
    }

    /** The dataset choices ("311 requests", "Code violations", "Crime"), one per dataset
        present; shown when there is more than one. */
    var datasetBox = byId("alert-datasets");
    var datasetList = byId("alert-dataset-list");
    function setDatasets(items) {
      C.clear(datasetList);
      items.forEach(function (d) {
        var input = C.el("input", { type: "checkbox", name: "alert-dataset", value: d.value });
        input.checked = true;
        input.addEventListener("change", schedulePreview);
        datasetList.appendChild(C.el("label", { className: "check layer" }, [
          input,
          C.el("span", { className: "legend-symbol" }, [C.datasetSymbol(d.value, "legend")]),
          d.label
        ]));
      });
      datasetBox.hidden = items.length < 2;
    }

    /** The ticked datasets: [] when all are (any dataset, new ones too), null when none. */
    function chosenDatasets() {
      var boxes = form.querySelectorAll("input[name=alert-dataset]");
      var on = Array.prototype.filter.call(boxes, function (i) { return i.checked; }).map(function (i) { return i.value; });
      if (!on.length && boxes.length) return null;
      return on.length === boxes.length ? [] : on;
    }

    function filters() {
      var category = byId("alert-category").value;
      var agency = byId("alert-agency").value;
      var kinds = Array.prototype.filter.call(form.querySelectorAll("input[name=alert-kind]"), function (i) { return i.checked; })
        .map(function (i) { return i.value; });
      // Overdue is asked for, never implied: "any" ([]) means the four changes only.
      var overdue = byId("alert-overdue").checked;
      return {
        service_codes: category ? [category] : [],
        agencies: agency ? [agency] : [],
        datasets: chosenDatasets() || [],
        event_kinds: kinds.length === 4 && !overdue ? [] : kinds.concat(overdue ? ["overdue"] : []) // all four means "any"
      };
    }

    function previewText(body) {
      if (!body) return _("No estimate available.");
      var perWeek = [body.per_week_average, body.alerts_per_week, body.per_week, body.average_per_week, body.mean_per_week]
        .filter(function (v) { return typeof v === "number"; })[0];
      var weeks = body.weeks || body.per_week_counts || body.weekly;
      if (perWeek === undefined && Array.isArray(weeks) && weeks.length) {
        var total = weeks.reduce(function (s, w) { return s + (typeof w === "number" ? w : Number(w.alerts || w.count || 0)); }, 0);
        perWeek = total / weeks.length;
      }
      if (perWeek === undefined) return _("No estimate available.");
      var rounded = perWeek < 10 ? Math.round(perWeek * 10) / 10 : Math.round(perWeek);
      var text = _n("About %(count)s alert per week", "About %(count)s alerts per week", rounded);
      // Say how much history the estimate rests on: a short history is a rough guess.
      var days = typeof body.history_days === "number" ? body.history_days : body.days;
      if (typeof days !== "number") return text + ".";
      var span = days < 1 ? _("less than a day") : _n("%(count)s day", "%(count)s days", Math.round(days));
      text += " " + (body.short_history
        ? _("(based on the %(span)s of data we have, so a rough guess).", { span: span })
        : _("(based on the last %(span)s).", { span: span }));
      if (typeof body.total === "number") text += " " + _("%(count)s in that time.", { count: C.formatNumber(body.total) });
      return text;
    }

    function schedulePreview() {
      clearTimeout(previewTimer);
      var t = target();
      if (!t) { preview.textContent = state.mode === "circle" ? _("Choose a place to see how many alerts to expect.") : _("Add at least 3 points to see how many alerts to expect."); return; }
      if (chosenDatasets() === null) { preview.textContent = _("No alerts: no kind of record is ticked."); return; }
      preview.textContent = _("Estimating…");
      previewTimer = setTimeout(function () {
        var seq = ++previewSeq;
        C.fetchJSON("/api/subscriptions/preview", { json: { target: t, filters: filters() } })
          .then(function (body) { if (seq === previewSeq) preview.textContent = previewText(body); })
          .catch(function (err) { if (seq === previewSeq) preview.textContent = _("Estimate unavailable: %(reason)s", { reason: err.message }); });
      }, 300);
    }

    /** "email", "webhook" or "both": how the person wants to be told. */
    function channel() {
      var chosen = form.querySelector("input[name=alert-channel]:checked");
      return chosen ? chosen.value : "email";
    }

    /** The webhook URL field's own error (the server decides; its reason is shown there). */
    var hookUrl = byId("alert-webhook-url");
    var hookError = byId("alert-webhook-error");
    function webhookError(text) {
      hookError.textContent = text || "";
      if (text) {
        hookUrl.setAttribute("aria-invalid", "true");
        hookUrl.focus();
      } else hookUrl.removeAttribute("aria-invalid");
    }

    function setMode(mode) {
      state.mode = mode;
      byId("alert-circle-controls").hidden = mode !== "circle";
      byId("alert-area-controls").hidden = mode !== "area";
      draw();
      schedulePreview();
    }

    function open(show) {
      state.active = show;
      form.hidden = !show;
      start.setAttribute("aria-expanded", show ? "true" : "false");
      map.getContainer().classList.toggle("picking", show);
      map.invalidateSize(); // the map is shorter (and sticky) on phones while picking
      if (show) {
        var f = requestMap.getFilters();
        if (f.service_code) byId("alert-category").value = f.service_code;
        if (f.agency) byId("alert-agency").value = f.agency;
        // The layers on the map are what the alert starts with ("crime near my school").
        if (Array.isArray(f.datasets)) {
          Array.prototype.forEach.call(form.querySelectorAll("input[name=alert-dataset]"), function (i) {
            i.checked = f.datasets.indexOf(i.value) >= 0;
          });
        }
        var first = form.querySelector("input[name=alert-mode]:checked");
        if (first) first.focus();
      }
      draw();
      schedulePreview();
    }

    function place(latlng, label) {
      if (!state.active) return;
      if (state.mode === "circle") {
        state.point = latlng;
        byId("alert-chosen").textContent = label ? _("Alert around %(place)s.", { place: label }) : "";
      } else state.vertices.push(latlng);
      draw();
      schedulePreview();
    }

    // Typed address or "Use my location": the point moves there and the map follows it.
    if (C.setupPlaceSearch) {
      C.setupPlaceSearch(byId("alert-search"), function (latlng, label) {
        if (!state.active) open(true);
        if (state.mode !== "circle") { form.querySelector("input[name=alert-mode][value=circle]").checked = true; setMode("circle"); }
        place(latlng, label);
        map.setView(latlng, Math.max(map.getZoom(), 16));
        var name = byId("alert-label");
        if (!name.value.trim() && label !== _("Your location")) name.value = label.slice(0, 200);
      });
    }

    start.addEventListener("click", function () { open(!state.active); });
    byId("alert-cancel").addEventListener("click", function () { open(false); start.focus(); });
    byId("alert-use-center").addEventListener("click", function () { place(map.getCenter()); });
    byId("alert-area-center").addEventListener("click", function () { place(map.getCenter()); });
    byId("alert-area-undo").addEventListener("click", function () { state.vertices.pop(); draw(); schedulePreview(); });
    byId("alert-area-clear").addEventListener("click", function () { state.vertices = []; draw(); schedulePreview(); });
    Array.prototype.forEach.call(form.querySelectorAll("input[name=alert-mode]"), function (input) {
      input.addEventListener("change", function () { if (input.checked) setMode(input.value); });
    });
    radius.addEventListener("input", function () {
      radiusOut.textContent = formatRadius(radiusM());
      radius.setAttribute("aria-valuetext", formatRadius(radiusM()));
      draw();
      schedulePreview();
    });
    ["alert-category", "alert-agency"].forEach(function (id) { byId(id).addEventListener("change", schedulePreview); });
    Array.prototype.forEach.call(form.querySelectorAll("input[name=alert-kind]"), function (input) {
      input.addEventListener("change", schedulePreview);
    });
    byId("alert-overdue").addEventListener("change", schedulePreview);
    Array.prototype.forEach.call(form.querySelectorAll("input[name=alert-channel]"), function (input) {
      input.addEventListener("change", function () { byId("alert-webhook").hidden = channel() === "email"; });
    });
    radiusOut.textContent = formatRadius(radiusM());
    radius.setAttribute("aria-valuetext", formatRadius(radiusM()));

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      message.className = "message";
      webhookError("");
      C.clear(byId("alert-secret")); // a secret is shown once: a new sign-up hides the last
      var t = target();
      var email = byId("alert-email");
      if (!t) {
        message.textContent = state.mode === "circle" ? _("Click the map (or use the centre of the map) to choose the place first.") : _("Add at least 3 points to outline the area first.");
        message.classList.add("error");
        return;
      }
      if (chosenDatasets() === null) {
        message.textContent = _("Tick at least one kind of record to hear about (311 requests, code violations, crime…).");
        message.classList.add("error");
        return;
      }
      if (!filters().event_kinds.length && !form.querySelector("input[name=alert-kind]:checked")) {
        message.textContent = _("Tick at least one kind of change to hear about.");
        message.classList.add("error");
        return;
      }
      if (!email.value || !email.checkValidity()) {
        message.textContent = _("Please enter a valid email address.");
        message.classList.add("error");
        email.focus();
        return;
      }
      var payload = {
        email: email.value.trim(),
        target: t,
        filters: filters(),
        delivery: byId("alert-delivery").value,
        label: byId("alert-label").value.trim() || null,
        language: C.lang // the confirmation and the alerts are written in the page's language
      };
      var told = channel();
      if (told !== "email") {
        if (!hookUrl.value.trim()) {
          message.textContent = _("Could not sign up: see the webhook URL.");
          message.classList.add("error");
          webhookError(_("Enter the URL alerts are posted to."));
          return;
        }
        payload.webhook = { url: hookUrl.value.trim(), format: byId("alert-webhook-format").value };
        payload.email_alerts = told === "both";
      }
      var button = byId("alert-submit");
      button.disabled = true;
      message.textContent = _("Sending…");
      C.fetchJSON("/api/subscriptions", { json: payload })
        .then(function (body) {
          message.textContent = (body && body.message) || _("Check your inbox: we sent a link to confirm your alert.");
          message.classList.add("success");
          if (body && body.webhook && body.webhook.secret) {
            var box = C.secretBox(body.webhook.secret, "alert");
            byId("alert-secret").appendChild(box);
            box.focus(); // it is shown only now: take the reader to it
          }
        })
        .catch(function (err) {
          // The server's reason about the webhook goes next to its field.
          if (told !== "email" && err.status === 422 && /webhook/i.test(err.message)) {
            message.textContent = _("Could not sign up: see the webhook URL.");
            message.classList.add("error");
            webhookError(err.message);
            return;
          }
          message.textContent = _("Could not sign up: %(reason)s", { reason: err.message });
          message.classList.add("error");
        })
        .then(function () { button.disabled = false; });
    });

    function openFromHash() {
      if (window.location.hash !== "#alert") return;
      if (!state.active) open(true);
      document.getElementById("alert").scrollIntoView({ block: "start" });
    }
    window.addEventListener("hashchange", openFromHash);
    openFromHash();
    return { place: place, setDatasets: setDatasets, isActive: function () { return state.active; } };
  }

  window.C311.setupAlert = setupAlert;
  window.C311.radiusFromSlider = radiusFromSlider;
})();
