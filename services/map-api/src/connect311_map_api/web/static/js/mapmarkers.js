/* A request's marker on the map and its popup (details fetched when it opens, with the
   timeline and photo). */
(function () {
  "use strict";
  var C = window.C311;
  var _ = C._;

  function detailRow(dl, term, value) {
    if (!value) return;
    dl.appendChild(C.el("dt", { text: term }));
    dl.appendChild(C.el("dd", { text: value }));
  }

  function detailRows(dl, p) {
    var info = C.datasetInfo(p.dataset);
    if (info.hasStatus) {
      detailRow(dl, _("Address"), p.address);
      detailRow(dl, _("Department"), p.agency_responsible);
      C.timeRows(dl, p, detailRow); // reported, then updated, then closed, in the city's zone
    } else {
      // A point event (crime): what and when it happened, near where (the address is
      // generalised to the block); no status, no "closed", no time to close.
      detailRow(dl, info.kindLabel, p.service_name || p.service_code);
      detailRow(dl, _("When"), C.formatDate(p.requested_datetime));
      detailRow(dl, _("Near"), p.address);
      detailRow(dl, _("Department"), p.agency_responsible);
    }
    detailRow(dl, _("Dataset"), info.label);
    detailRow(dl, _("%(label)s id", { label: info.idLabel }), p.service_request_id || "");
  }

  /** The popup or list title of a record: its category, or what kind of record it is. */
  function recordTitle(p) {
    var info = C.datasetInfo(p.dataset);
    if (p.service_name || p.service_code) return p.service_name || p.service_code;
    return info.dataset === "311" ? _("Service request") : info.item.charAt(0).toUpperCase() + info.item.slice(1);
  }

  /** A marker's accessible name: "Pothole (Open)", "BURGLARY (crime incident, Jan 3, 2006…)". */
  function markerName(p) {
    var info = C.datasetInfo(p.dataset);
    if (!info.hasStatus) return recordTitle(p) + " (" + info.item + ", " + C.formatDate(p.requested_datetime) + ")";
    var kind = info.dataset === "311" ? "" : info.item + ", ";
    return recordTitle(p) + " (" + kind + C.statusLabel(p.status) + ")";
  }

  /** The description, labelled when it is not a plain description ("Violations: …"). */
  function descriptionNode(p) {
    if (!p.description) return null;
    var label = C.datasetInfo(p.dataset).descriptionLabel;
    var node = C.el("p", { className: "description" });
    if (label && label !== _("Description")) node.appendChild(C.el("strong", { text: label + ": " }));
    node.appendChild(document.createTextNode(p.description));
    return node;
  }

  /** The popup's title, rows and description from the request's full detail. */
  function fillDetails(box, dl, p) {
    detailRows(C.clear(dl), p);
    var title = box.querySelector(".popup-title");
    if (title && p.service_name) title.textContent = p.service_name;
    if (p.description && !box.querySelector(".description")) {
      box.insertBefore(descriptionNode(p), box.querySelector(".popup-after"));
    }
  }

  /** The popup of one request; the timeline is fetched when it opens. */
  function popupContent(feature, marker) {
    var p = feature.properties || {};
    var id = p.service_request_id || "";
    var info = C.datasetInfo(p.dataset);
    var timeline = C.el("ol", { className: "timeline", "aria-live": "polite" }, [
      C.el("li", { className: "muted", text: _("Loading timeline…") })
    ]);
    // A record without a status (a crime incident) says what it is instead of a badge.
    var statusLine = info.hasStatus
      ? C.el("p", { className: "popup-status" }, [C.statusBadge(p.status)])
      : C.el("p", { className: "popup-kind", text: info.item.charAt(0).toUpperCase() + info.item.slice(1) });
    var dl = C.el("dl", { className: "details" });
    detailRows(dl, p);
    var follow = info.idLabel === "Case" ? _("Track or follow this case") : _("Track or follow this request");
    var box = C.el("div", { className: "popup", "data-request-id": id, "data-dataset": info.dataset }, [
      C.el("h3", { className: "popup-title", text: recordTitle(p) }),
      statusLine,
      dl,
      descriptionNode(p),
      // No lifecycle, nothing to follow: a crime incident has no timeline and no tracking.
      info.hasStatus ? C.el("h4", { className: "popup-after", text: _("Timeline") }) : C.el("span", { className: "popup-after" }),
      info.hasStatus ? timeline : null,
      info.hasStatus ? C.el("p", {}, [
        // Inside another site's iframe the page opens in a new tab, never replacing theirs.
        C.el("a", {
          href: "/requests/" + encodeURIComponent(id),
          target: window.top === window.self ? null : "_blank",
          rel: window.top === window.self ? null : "noopener",
          text: follow
        })
      ]) : null
    ]);
    C.fetchJSON("/api/requests/" + encodeURIComponent(id))
      .then(function (body) {
        // The detail says why a request was closed (and the city's own word) beyond the badge.
        // The detail is a Feature: its status is in `properties`, the wording beside them.
        // The close time (and the city's wording) sit beside `properties`: read both, or the
        // popup says "Last updated" for the close and never "Closed" (as the track page does).
        var now = body && body.properties ? Object.assign({}, body.properties, { closed_datetime: body.closed_datetime }) : p;
        if (body && body.properties) fillDetails(box, dl, now); // a tile's marker had the bare minimum
        if (body && info.hasStatus) C.statusLine(statusLine, now.status, body.status_text);
        C.renderTimeline(timeline, body && body.timeline);
        var figure = body && C.photoFigure ? C.photoFigure(body.media_url) : null;
        if (figure) box.insertBefore(figure, box.querySelector(".popup-after"));
        // The popup grew (timeline, photo): lay it out again so it pans fully into view.
        // update() takes the content out and puts it back, which drops the keyboard focus:
        // give it back to whatever in the popup had it (the title, after "Show on the map").
        if (marker && marker.isPopupOpen()) {
          var focused = box.contains(document.activeElement) ? document.activeElement : null;
          marker.getPopup().update();
          if (focused && document.activeElement !== focused) focused.focus();
        }
      })
      .catch(function (err) {
        C.clear(timeline).appendChild(C.el("li", { className: "error", text: _("Timeline unavailable: %(reason)s", { reason: err.message }) }));
      });
    return box;
  }

  function markerFor(feature) {
    var p = feature.properties || {};
    var coords = feature.geometry.coordinates;
    var info = C.datasetInfo(p.dataset);
    // 311 requests keep their round status markers; other datasets are drawn by their own
    // shape (a house for a code violation case, a triangle for a crime incident).
    var symbol = info.symbol !== "circle";
    var name = markerName(p);
    var marker = L.marker([coords[1], coords[0]], {
      icon: L.divIcon({
        className: "req-marker " + (info.hasStatus ? "status-" + C.safeStatus(p.status) : "no-status") + (symbol ? " symbol" : ""),
        html: symbol ? C.datasetSymbol(p.dataset, p.status) : "",
        iconSize: symbol ? [22, 22] : [18, 18]
      }),
      title: name,
      alt: name,
      keyboard: true,
      riseOnHover: true
    });
    marker.feature = feature;
    marker.on("add", function () {
      var icon = marker.getElement();
      if (icon) icon.setAttribute("data-request-id", p.service_request_id || "");
    });
    // One box per opening: popup.update() (after the timeline and photo load) calls this
    // function again, which must not build a fresh box and fetch again (an endless loop).
    var box = null;
    marker.on("popupclose", function () { box = null; });
    marker.bindPopup(function () {
      if (!box) box = popupContent(feature, marker);
      return box;
    }, { maxWidth: 320, minWidth: 220 });
    return marker;
  }

  window.C311.mapParts = Object.assign(window.C311.mapParts || {}, {
    markerFor: markerFor
  });
})();
