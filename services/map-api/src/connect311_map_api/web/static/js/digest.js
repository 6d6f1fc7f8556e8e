/* "Alert me", for a department: pick the department and an email, and get a daily digest of
   its overdue requests (most late first) and its oldest open ones. */
(function () {
  "use strict";
  var C = window.C311;
  var _ = C._;

  function byId(id) { return document.getElementById(id); }

  function setupDigest() {
    var form = byId("digest-form");
    if (!form) return;
    var agency = byId("digest-agency");
    var email = byId("digest-email");
    var message = byId("digest-message");
    var loaded = false;
    byId("digest").addEventListener("toggle", function () {
      if (loaded) return;
      loaded = true; // the department list is asked for once, when the section is opened
      C.loadAgencies().then(function (items) { C.fillSelect(agency, items, ""); }).catch(function () {
        loaded = false;
      });
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      message.className = "message";
      if (!agency.value) {
        message.textContent = _("Choose the department the digest is for.");
        message.classList.add("error");
        agency.focus();
        return;
      }
      if (!email.value.trim() || !email.checkValidity()) {
        message.textContent = _("Please enter a valid email address.");
        message.classList.add("error");
        email.focus();
        return;
      }
      var button = byId("digest-submit");
      button.disabled = true;
      message.textContent = _("Sending…");
      C.fetchJSON("/api/subscriptions", {
        json: {
          email: email.value.trim(),
          target: { kind: "department_digest", agency: agency.value },
          delivery: "daily",
          language: C.lang // the confirmation and the digests are written in the page's language
        }
      })
        .then(function (body) {
          message.textContent = (body && body.message) || _("Check your inbox: we sent a link to confirm your alert.");
          message.classList.add("success");
        })
        .catch(function (err) {
          message.textContent = _("Could not sign up: %(reason)s", { reason: err.message });
          message.classList.add("error");
        })
        .then(function () { button.disabled = false; });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setupDigest);
  else setupDigest();
})();
