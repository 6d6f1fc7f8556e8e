/* A request's photo: an <img> for https links (lazy, sized, described), a plain link for
   http ones (an https page would block them as mixed content), nothing otherwise. The API
   already drops anything but http(s) (connect311_contracts.media); this checks again because
   the page must never turn feed text into a script URL. */
(function () {
  "use strict";
  var C = window.C311;
  var _ = C._;
  var ALT = _("Photo of the reported problem");

  function photoFigure(url) {
    var link = typeof url === "string" ? url : "";
    var scheme = link.slice(0, 8).toLowerCase();
    // An http photo on this very site (a local run) loads too: the CSP allows 'self'.
    var sameSite = link.indexOf(window.location.origin + "/") === 0;
    if (scheme === "https://" || sameSite) {
      var img = C.el("img", {
        src: link, alt: ALT, loading: "lazy", decoding: "async",
        width: "320", height: "240", referrerpolicy: "no-referrer"
      });
      // A photo that no longer loads leaves a link rather than a broken-image icon.
      img.addEventListener("error", function () {
        img.replaceWith(C.el("a", { href: link, rel: "noopener noreferrer", target: "_blank", text: _("Open the photo (it did not load here)") }));
      });
      return C.el("figure", { className: "photo" }, [
        C.el("a", { href: link, rel: "noopener noreferrer", target: "_blank", "aria-label": _("%(alt)s (opens full size)", { alt: ALT }) }, [img])
      ]);
    }
    if (scheme.slice(0, 7) === "http://") {
      return C.el("p", { className: "photo" }, [
        C.el("a", { href: link, rel: "noopener noreferrer", target: "_blank", text: _("See the photo of the reported problem") })
      ]);
    }
    return null;
  }

  C.photoFigure = photoFigure;
})();
