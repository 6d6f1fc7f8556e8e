/* "Track my request": look a request up by id, show its timeline, offer follow-by-email. */
(function () {
  "use strict";
  var C = window.C311;
  var cfg = C.config();
  var form = document.getElementById("track-form");
  var input = document.getElementById("track-id");
  var message = document.getElementById("track-message");
  var result = document.getElementById("track-result");
  var current = null;

  function row(dl, term, value) {
    if (!value) return;
    dl.appendChild(C.el("dt", { text: term }));
    dl.appendChild(C.el("dd", { text: value }));
  }

  function show(answer) {
    // The API answers a GeoJSON Feature with the timeline and a few fields beside it.
    var body = Object.assign({}, answer.properties || {}, answer);
    current = body.service_request_id;
    document.getElementById("track-title").textContent = body.service_name || body.service_code || "Service request";
    C.statusLine(document.getElementById("track-status"), body.status, body.status_text);
    var dl = C.clear(document.getElementById("track-details"));
    row(dl, "Request id", body.service_request_id);
    row(dl, "Address", body.address);
    row(dl, "Department", body.agency_responsible);
    row(dl, "Reported", C.formatDate(body.requested_datetime));
    row(dl, "Last updated", C.formatDate(body.updated_datetime));
    row(dl, "Closed", C.formatDate(body.closed_datetime));
    row(dl, "Latest notes", body.status_notes);
    document.getElementById("track-description").textContent = body.description || "";
    C.renderTimeline(document.getElementById("track-timeline"), body.timeline);
    document.getElementById("follow-message").textContent = "";
    result.hidden = false;
    message.textContent = "";
    message.className = "message";
  }

  function lookup(id) {
    id = id.trim();
    if (!id) return;
    message.className = "message";
    message.textContent = "Looking up " + id + "…";
    result.hidden = true;
    C.fetchJSON("/api/requests/" + encodeURIComponent(id))
      .then(show)
      .catch(function (err) {
        message.textContent = err.status === 404
          ? "No request with id " + id + ". Check the id in your confirmation from the city (it looks like source:number)."
          : "Could not look it up: " + err.message;
        message.classList.add("error");
      });
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
      out.textContent = "Please enter a valid email address.";
      out.classList.add("error");
      email.focus();
      return;
    }
    var button = document.getElementById("follow-submit");
    button.disabled = true;
    out.textContent = "Sending…";
    C.fetchJSON("/api/subscriptions", {
      json: {
        email: email.value.trim(),
        target: { kind: "follow", service_request_id: current },
        filters: { service_codes: [], agencies: [], datasets: [], event_kinds: [] },
        delivery: "instant",
        label: "Request " + current
      }
    }).then(function (body) {
      out.textContent = (body && body.message) || "Check your inbox: we sent a link to confirm.";
      out.classList.add("success");
    }).catch(function (err) {
      out.textContent = "Could not sign up: " + err.message;
      out.classList.add("error");
    }).then(function () { button.disabled = false; });
  });

  if (cfg.requestId) {
    input.value = cfg.requestId;
    lookup(cfg.requestId);
  }
})();
