/* Small SVG charts (no library): horizontal grouped bars and a vertical grouped time series.
   Labels are set with textContent; colours come from CSS classes. */
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";

  function svgEl(tag, attrs, text) {
    var node = document.createElementNS(NS, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  function niceMax(value) {
    if (value <= 0) return 1;
    var pow = Math.pow(10, Math.floor(Math.log10(value)));
    var steps = [1, 2, 2.5, 5, 10];
    for (var i = 0; i < steps.length; i++) if (steps[i] * pow >= value) return steps[i] * pow;
    return 10 * pow;
  }

  /** A round step (1, 2 or 5 times a power of ten) at least `value`. */
  function niceStep(value) {
    if (value <= 0) return 1;
    var pow = Math.pow(10, Math.floor(Math.log10(value)));
    var steps = [1, 2, 5, 10];
    for (var i = 0; i < steps.length; i++) if (steps[i] * pow >= value) return steps[i] * pow;
    return 10 * pow;
  }

  function legend(series) {
    var list = document.createElement("ul");
    list.className = "chart-legend";
    series.forEach(function (s) {
      var item = document.createElement("li");
      var sw = document.createElement("span");
      sw.className = "swatch " + s.className;
      sw.setAttribute("aria-hidden", "true");
      item.appendChild(sw);
      item.appendChild(document.createTextNode(s.name));
      list.appendChild(item);
    });
    return list;
  }

  function empty(container, text) {
    while (container.firstChild) container.removeChild(container.firstChild);
    var p = document.createElement("p");
    p.className = "muted";
    p.textContent = text || window.C311._("No data for these filters.");
    container.appendChild(p);
  }

  /**
   * Horizontal grouped bars: one group per label, one bar per series.
   * data: {labels: [...], series: [{name, className, values: [...]}], format: fn, title}
   */
  function horizontalBars(container, data) {
    if (!data.labels.length) return empty(container);
    while (container.firstChild) container.removeChild(container.firstChild);
    var fmt = data.format || String;
    // Drawn at the container's own width so text stays readable on a phone.
    var width = Math.max(300, Math.min(900, container.clientWidth || 640));
    var barH = 14, gap = 10, labelW = Math.round(Math.min(170, width * 0.34)), valueW = 70;
    var maxChars = Math.max(8, Math.floor(labelW / 7));
    var groupH = data.series.length * barH + gap;
    var height = data.labels.length * groupH + 10;
    var max = niceMax(Math.max.apply(null, data.series.map(function (s) {
      return Math.max.apply(null, s.values.map(function (v) { return v || 0; }));
    })));
    var plotW = width - labelW - valueW;
    var svg = svgEl("svg", { viewBox: "0 0 " + width + " " + height, role: "img", class: "chart-svg" });
    svg.appendChild(svgEl("title", {}, data.title || window.C311._("Bar chart")));
    data.labels.forEach(function (label, i) {
      var y0 = i * groupH + 5;
      var text = label.length > maxChars ? label.slice(0, maxChars - 1) + "…" : label;
      var t = svgEl("text", { x: labelW - 8, y: y0 + (data.series.length * barH) / 2 + 4, "text-anchor": "end", class: "chart-label" }, text);
      t.appendChild(svgEl("title", {}, label));
      svg.appendChild(t);
      data.series.forEach(function (s, j) {
        var v = s.values[i] || 0;
        var w = Math.max(v > 0 ? 1 : 0, (v / max) * plotW);
        var bar = svgEl("rect", { x: labelW, y: y0 + j * barH, width: w, height: barH - 2, class: "bar " + s.className });
        bar.appendChild(svgEl("title", {}, label + " – " + s.name + ": " + fmt(s.values[i])));
        svg.appendChild(bar);
        svg.appendChild(svgEl("text", { x: labelW + w + 4, y: y0 + j * barH + barH - 4, class: "chart-value" }, fmt(s.values[i])));
      });
    });
    container.appendChild(svg);
    container.appendChild(legend(data.series));
  }

  /** Vertical grouped bars over periods (x axis = period labels). */
  function periodBars(container, data) {
    if (!data.labels.length) return empty(container);
    while (container.firstChild) container.removeChild(container.firstChild);
    var width = Math.max(300, Math.min(900, container.clientWidth || 680));
    var height = 260, left = 44, bottom = 46, top = 10, right = 8;
    var plotW = width - left - right, plotH = height - top - bottom;
    var n = data.labels.length, k = data.series.length;
    var slot = plotW / n, barW = Math.max(1, (slot * 0.8) / k);
    var raw = Math.max.apply(null, data.series.map(function (s) {
      return Math.max.apply(null, s.values.map(function (v) { return v || 0; }));
    }));
    var step = Math.max(1, niceStep(raw / 4));
    var ticks = Math.max(1, Math.ceil(raw / step));
    var max = step * ticks;
    var svg = svgEl("svg", { viewBox: "0 0 " + width + " " + height, role: "img", class: "chart-svg" });
    svg.appendChild(svgEl("title", {}, data.title || window.C311._("Chart over time")));
    for (var g = 0; g <= ticks; g++) {
      var gy = top + plotH - (g / ticks) * plotH;
      svg.appendChild(svgEl("line", { x1: left, x2: width - right, y1: gy, y2: gy, class: "grid-line" }));
      svg.appendChild(svgEl("text", { x: left - 4, y: gy + 4, "text-anchor": "end", class: "chart-value" }, g * step));
    }
    var every = Math.ceil(n / Math.max(2, Math.floor(width / 85)));
    data.labels.forEach(function (label, i) {
      var x0 = left + i * slot + slot * 0.1;
      data.series.forEach(function (s, j) {
        var v = s.values[i] || 0;
        var h = (v / max) * plotH;
        var bar = svgEl("rect", { x: x0 + j * barW, y: top + plotH - h, width: Math.max(1, barW - 1), height: h, class: "bar " + s.className });
        bar.appendChild(svgEl("title", {}, label + " – " + s.name + ": " + v));
        svg.appendChild(bar);
      });
      if (i % every === 0) {
        svg.appendChild(svgEl("text", { x: left + i * slot + slot / 2, y: height - bottom + 16, "text-anchor": "middle", class: "chart-label" }, label));
      }
    });
    container.appendChild(svg);
    container.appendChild(legend(data.series));
  }

  window.C311Charts = { horizontalBars: horizontalBars, periodBars: periodBars, empty: empty };
})();
