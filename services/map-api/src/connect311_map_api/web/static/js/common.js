/* Connect311 shared helpers: the page's language, its configuration, elements and JSON
   requests. Feed text is untrusted: it only ever reaches the page through textContent or
   attribute setters, never through innerHTML. Loaded first on every page (base.html);
   dates.js, statuses.js and datasets.js add their helpers to the same `C311`. */
(function () {
  "use strict";

  /* The page's language (issue 16): its strings come from the gettext catalog as JSON in the
     page (#c311-i18n, web/i18n.py). `_(msgid, {name: value})` and `_n(one, many, n)` look
     them up; English, the source text, is the fallback for anything missing. */
  var I18N = (function () {
    var node = document.getElementById("c311-i18n");
    try { return (node && JSON.parse(node.textContent)) || {}; } catch (e) { return {}; }
  })();
  var MESSAGES = I18N.messages || {};
  var LOCALE = I18N.locale || "en-US";
  var numberFormat = null;

  /** A number as the page's language writes it (1,234.5 in en-US and es-US). */
  function formatNumber(n) {
    try {
      numberFormat = numberFormat || new Intl.NumberFormat(LOCALE, { maximumFractionDigits: 1 });
      return numberFormat.format(n);
    } catch (e) {
      return String(n);
    }
  }

  /** Fill `%(name)s` placeholders from `values`; an unknown name stays as written. */
  function interpolate(text, values) {
    if (!values) return text;
    return text.replace(/%\((\w+)\)s/g, function (whole, name) {
      return Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : whole;
    });
  }

  /** A string in the page's language. */
  function _(msgid, values) {
    var found = MESSAGES[msgid];
    return interpolate(typeof found === "string" && found ? found : msgid, values);
  }

  /** The singular or plural form for `n`; `%(count)s` is n in the page's number format.
      (English and Spanish have one form for 1 and another for the rest.) */
  function _n(singular, plural, n, values) {
    var forms = MESSAGES[singular];
    var index = n === 1 ? 0 : 1;
    var text = Array.isArray(forms) && forms[index] ? forms[index] : (index ? plural : singular);
    return interpolate(text, Object.assign({ count: formatNumber(n) }, values));
  }

  /** The page's configuration from its JSON data block. */
  function config() {
    var node = document.getElementById("c311-config");
    return node ? JSON.parse(node.textContent) : {};
  }

  /** Create an element; `text` is set as text, never parsed as HTML. */
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      var value = attrs[key];
      if (value === null || value === undefined || value === false) return;
      if (key === "text") node.textContent = String(value);
      else if (key === "className") node.className = value;
      else if (key.slice(0, 2) === "on" && typeof value === "function") {
        node.addEventListener(key.slice(2), value);
      } else node.setAttribute(key, value === true ? "" : String(value));
    });
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) return;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  /** Remove every child of a node. */
  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  /** An API error body as one readable sentence. */
  function errorText(body, response) {
    if (body && typeof body.detail === "string") return body.detail;
    if (body && Array.isArray(body.detail)) {
      return body.detail
        .map(function (d) {
          var where = Array.isArray(d.loc) ? d.loc.filter(function (p) { return p !== "body"; }).join(".") : "";
          return (where ? where + ": " : "") + (d.msg || "invalid");
        })
        .join("; ");
    }
    if (body && typeof body.message === "string") return body.message;
    return _("The server answered %(status)s %(text)s", { status: response.status, text: response.statusText || "" });
  }

  /** Fetch JSON; rejects with an Error whose message is readable and `status` set. */
  function fetchJSON(url, options) {
    var opts = Object.assign({ headers: { Accept: "application/json" } }, options || {});
    if (opts.json !== undefined) {
      opts.method = opts.method || "POST";
      opts.headers = Object.assign({ "Content-Type": "application/json" }, opts.headers);
      opts.body = JSON.stringify(opts.json);
      delete opts.json;
    }
    return fetch(url, opts).then(function (response) {
      return response.text().then(function (text) {
        var body = null;
        try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
        if (!response.ok) {
          var err = new Error(errorText(body, response));
          err.status = response.status;
          err.retryAfter = response.headers.get("Retry-After"); // seconds, on 429 and 503
          throw err;
        }
        return body;
      });
    });
  }

  /** A query string from an object, skipping empty values. */
  function query(params) {
    var parts = [];
    Object.keys(params).forEach(function (key) {
      var value = params[key];
      if (value === null || value === undefined || value === "") return;
      parts.push(encodeURIComponent(key) + "=" + encodeURIComponent(value));
    });
    return parts.length ? "?" + parts.join("&") : "";
  }

  window.C311 = {
    _: _,
    _n: _n,
    lang: I18N.lang || "en",
    locale: LOCALE,
    formatNumber: formatNumber,
    config: config,
    el: el,
    clear: clear,
    fetchJSON: fetchJSON,
    query: query
  };
})();
