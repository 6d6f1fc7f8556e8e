/* Manage my alerts: list one person's subscriptions (by the signed token in their email link),
   change how often they arrive, or delete them. */
(function () {
  "use strict";
  var C = window.C311;
  var cfg = C.config();
  var token = cfg.token || "";
  var list = document.getElementById("manage-list");
  var message = document.getElementById("manage-message");
  var DELIVERY = [["instant", "As it happens"], ["hourly", "Hourly digest"], ["daily", "Daily digest"], ["weekly", "Weekly digest"]];
  var url = "/api/subscriptions/manage" + C.query({ token: token });

  function describe(target) {
    if (!target) return "Alert";
    switch (target.kind) {
      case "circle": return "Within " + (target.radius_m >= 1000 ? (target.radius_m / 1000) + " km" : target.radius_m + " m") + " of a point";
      case "area": return "Inside an area you drew";
      case "corridor": return "Along a route (" + target.width_m + " m wide)";
      case "follow": return "Request " + target.service_request_id;
      case "citywide": return "Everywhere in the city";
      default: return "Alert";
    }
  }

  function statusText(status) {
    return {
      pending: "waiting for you to confirm (see the email we sent)",
      active: "active",
      unsubscribed: "stopped (no emails)",
      disabled: "stopped: emails to you could not be delivered"
    }[status] || "unknown";
  }

  function say(text, kind) {
    message.className = "message" + (kind ? " " + kind : "");
    message.textContent = text;
  }

  function post(body) {
    return C.fetchJSON(url, { json: body });
  }

  function item(sub) {
    var id = sub.subscription_id;
    var selectId = "delivery-" + id.replace(/[^A-Za-z0-9_-]/g, "");
    var select = C.el("select", { id: selectId });
    DELIVERY.forEach(function (d) {
      var o = C.el("option", { value: d[0], text: d[1] });
      if (sub.delivery === d[0]) o.selected = true;
      select.appendChild(o);
    });
    var filters = sub.filters || {};
    var narrowing = [].concat(filters.service_codes || [], filters.agencies || [], filters.datasets || []);
    var statusLine = C.el("p", { className: "muted", text: "Status: " + statusText(sub.status) });
    var li = C.el("li", { className: "card sub-item", "data-subscription-id": id }, [
      C.el("h2", { className: "h-small", text: sub.label || describe(sub.target) }),
      C.el("p", { text: describe(sub.target) + (narrowing.length ? " · only " + narrowing.join(", ") : "") }),
      statusLine,
      C.el("label", { for: selectId, text: "How often" }),
      select
    ]);
    var save = C.el("button", { type: "button", text: "Save" });
    var stop = C.el("button", { type: "button", className: "secondary", text: "Stop these emails" });
    var del = C.el("button", { type: "button", className: "danger", text: "Delete this alert" });
    save.addEventListener("click", function () {
      post({ action: "set_delivery", subscription_id: id, delivery: select.value })
        .then(function (body) { say((body && body.message) || "Saved.", "success"); })
        .catch(function (err) { say("Could not save: " + err.message, "error"); });
    });
    stop.addEventListener("click", function () {
      post({ action: "unsubscribe", subscription_id: id })
        .then(function (body) { statusLine.textContent = "Status: " + statusText("unsubscribed"); say((body && body.message) || "You will get no more emails for this alert.", "success"); })
        .catch(function (err) { say("Could not unsubscribe: " + err.message, "error"); });
    });
    del.addEventListener("click", function () {
      post({ action: "delete", subscription_id: id })
        .then(function (body) { li.remove(); say((body && body.message) || "Alert deleted.", "success"); if (!list.children.length) say("You have no alerts left.", "success"); })
        .catch(function (err) { say("Could not delete: " + err.message, "error"); });
    });
    li.appendChild(C.el("div", { className: "buttons" }, [save, stop, del]));
    return li;
  }

  if (!token) {
    say("This page needs the link from one of our emails (it carries your personal key).", "error");
    return;
  }
  C.fetchJSON(url)
    .then(function (body) {
      var subs = Array.isArray(body) ? body : (body && body.subscriptions) || [];
      C.clear(list);
      subs.forEach(function (s) { list.appendChild(item(s)); });
      say(subs.length ? "You have " + subs.length + " alert" + (subs.length === 1 ? "" : "s") + "." : "You have no alerts.");
    })
    .catch(function (err) {
      say(err.status === 400 || err.status === 403 || err.status === 404
        ? "This link is invalid or has expired. Open the newest email from us, or sign up again."
        : "Could not load your alerts: " + err.message, "error");
    });
})();
