/* Webhooks on the pages (issue 19): a signing secret shown once, with a copy button, and a
   webhook named by its host. Used by "Alert me" (after sign-up) and the manage page (after a
   rotation). */
(function () {
  "use strict";
  var C = window.C311;
  var _ = C._;

  /** The host (and port) of a webhook URL: all a page shows of it, since a Slack or Teams
      URL is itself a secret (its path is the key) and a receiver's path may be too. */
  function webhookHost(url) {
    try { return new URL(url).host || _("an unknown host"); } catch (e) { return _("an unknown host"); }
  }

  var FORMATS = { standard: _("Standard Webhooks JSON"), slack: _("Slack"), teams: _("Microsoft Teams") };
  function formatName(format) {
    return Object.prototype.hasOwnProperty.call(FORMATS, format) ? FORMATS[format] : String(format || "");
  }

  /** Put text on the clipboard: the Clipboard API where the page may use it, else a
      selection and the older copy command. Resolves true when copied. */
  function copyText(field) {
    field.focus();
    field.select();
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(field.value).then(function () { return true; }, legacyCopy);
    }
    return Promise.resolve(legacyCopy());
  }

  function legacyCopy() {
    try { return document.execCommand("copy"); } catch (e) { return false; }
  }

  /** The box showing a new signing secret once: the warning first, the secret in a read-only
      field, a copy button and where to read how to check signatures. `key` keeps ids unique. */
  function secretBox(secret, key) {
    var id = "secret-" + key;
    var field = C.el("input", {
      type: "text", id: id, className: "secret-value", readonly: true, value: secret,
      spellcheck: "false", autocomplete: "off", "aria-describedby": id + "-warning"
    });
    var said = C.el("p", { className: "hint", role: "status", "aria-live": "polite" });
    var copy = C.el("button", { type: "button", className: "secondary", text: _("Copy the secret") });
    copy.addEventListener("click", function () {
      copyText(field).then(function (done) {
        said.textContent = done ? _("Copied.") : _("Could not copy: the secret is selected, copy it yourself.");
      });
    });
    return C.el("section", { className: "secret-box", id: id + "-box", tabindex: "-1", "aria-labelledby": id + "-title", "data-secret-box": "" }, [
      C.el("h3", { className: "h-small", id: id + "-title", text: _("Your webhook's signing secret") }),
      C.el("p", { className: "secret-warning", id: id + "-warning", text: _("Store it now: it will not be shown again. Your receiver checks every alert's webhook-signature header with it.") }),
      C.el("label", { for: id, text: _("Signing secret") }),
      C.el("div", { className: "place-row" }, [field, copy]),
      said,
      C.el("p", {}, [C.el("a", { href: "/webhooks", text: _("How to check the signature") })])
    ]);
  }

  window.C311.webhookHost = webhookHost;
  window.C311.webhookFormatName = formatName;
  window.C311.secretBox = secretBox;
})();
