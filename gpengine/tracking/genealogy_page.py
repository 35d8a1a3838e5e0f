"""The HTML/JS/CSS of the genealogy page, kept apart from the graph logic.

One self-contained file: the data is a JSON block (``#gp-data``) filled in by
`genealogy.write_html`; the script draws an SVG with plain DOM calls
(createElementNS, setAttribute, addEventListener), no library, no network, no
storage, so it works offline and inside the MLflow artifact viewer's sandbox.
Interaction: hover a node for its expression, fitness and operator; click a
node to highlight its ancestry; "best" goes back to the best's; wheel zooms,
drag pans; the id box jumps to an individual.
"""

TEMPLATE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>__TITLE__</title>
<style>
html,body{margin:0;height:100%;font:13px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;background:#fafafa}
#bar{padding:6px 10px;border-bottom:1px solid #ddd;background:#fff;display:flex;gap:12px;align-items:center;flex-wrap:wrap}
#bar b{font-size:14px}
#bar input{width:7em}
#info{color:#555}
#dag{display:block;width:100%;height:calc(100% - 44px);cursor:grab;background:#fafafa}
#tip{position:fixed;display:none;max-width:480px;padding:6px 8px;background:#fff;border:1px solid #888;border-radius:4px;box-shadow:0 2px 6px rgba(0,0,0,.2);pointer-events:none;white-space:pre-wrap;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
.edge{fill:none;stroke:#c8c8c8;stroke-width:.7}
.hedge{fill:none;stroke:#c0392b;stroke-width:2}
.node{stroke:#333;stroke-width:.5}
.node.fail{fill:#fff;stroke:#999}
.node.hl{stroke:#c0392b;stroke-width:2.5}
.node.root{stroke:#000;stroke-width:3}
.hof{fill:none;stroke:#d4a017;stroke-width:1.5}
.glabel{fill:#777;font-size:11px}
.legend span{display:inline-block;width:10px;height:10px;border-radius:5px;margin:0 3px 0 8px;vertical-align:middle}
</style>
</head>
<body>
<div id="bar"><b>__TITLE__</b>
<span id="info"></span>
<label>id <input id="goto" type="text" inputmode="numeric"></label>
<button id="bestbtn" type="button">best</button>
<span class="legend"><span style="background:#440154"></span>low<span style="background:#fde725"></span>high<span style="background:#fff;border:1px solid #999"></span>failed<span style="background:#c0392b"></span>ancestry<span style="background:#fff;border:2px solid #d4a017"></span>hall of fame</span>
</div>
<svg id="dag" xmlns="http://www.w3.org/2000/svg"></svg>
<div id="tip"></div>
<script type="application/json" id="gp-data">__DATA__</script>
<script>
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("gp-data").textContent);
  var NS = "http://www.w3.org/2000/svg";
  var svg = document.getElementById("dag");
  var tip = document.getElementById("tip");
  var info = document.getElementById("info");
  var CW = 90, RH = 16, PAD = 30, R = 5;
  var byId = {}, circles = {};
  var fmin = Infinity, fmax = -Infinity, maxRow = 0, maxCol = 0;
  D.nodes.forEach(function (n) {
    byId[n.id] = n;
    if (n.f !== null) { fmin = Math.min(fmin, n.f); fmax = Math.max(fmax, n.f); }
    maxRow = Math.max(maxRow, n.r); maxCol = Math.max(maxCol, n.c);
  });
  function X(n) { return PAD + n.c * CW; }
  function Y(n) { return PAD + 14 + n.r * RH; }
  var STOPS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  function colour(f) {
    if (f === null) { return "#ffffff"; }
    var t = fmax > fmin ? (f - fmin) / (fmax - fmin) : 1;
    var k = Math.min(STOPS.length - 2, Math.floor(t * (STOPS.length - 1)));
    var u = t * (STOPS.length - 1) - k, a = STOPS[k], b = STOPS[k + 1], c = [];
    for (var j = 0; j < 3; j++) { c.push(Math.round(a[j] + (b[j] - a[j]) * u)); }
    return "rgb(" + c.join(",") + ")";
  }
  function el(tag, attrs, parent) {
    var e = document.createElementNS(NS, tag);
    for (var k in attrs) { if (Object.prototype.hasOwnProperty.call(attrs, k)) { e.setAttribute(k, attrs[k]); } }
    (parent || svg).appendChild(e);
    return e;
  }
  var W = PAD * 2 + maxCol * CW + 40, H = PAD * 2 + 14 + (maxRow + 1) * RH;
  var vb = [0, 0, W, H];
  function setView() { svg.setAttribute("viewBox", vb.join(" ")); }
  setView();
  var world = el("g", {});
  var shown = {};
  D.nodes.forEach(function (n) {
    if (!shown[n.c]) { shown[n.c] = 1; var t = el("text", {x: X(n) - 8, y: PAD - 6, "class": "glabel"}, world); t.textContent = "g" + n.g; }
  });
  var d = [];
  D.nodes.forEach(function (n) {
    n.p.forEach(function (p) { var q = byId[p]; if (q) { d.push("M" + X(q) + "," + Y(q) + "L" + X(n) + "," + Y(n)); } });
  });
  el("path", {d: d.join(""), "class": "edge"}, world);
  var hpath = el("path", {d: "", "class": "hedge"}, world);
  D.nodes.forEach(function (n) {
    circles[n.id] = el("circle", {cx: X(n), cy: Y(n), r: R, fill: colour(n.f), "class": n.f === null ? "node fail" : "node", "data-id": n.id}, world);
  });
  D.hof.forEach(function (i) { var n = byId[i]; if (n) { el("circle", {cx: X(n), cy: Y(n), r: R + 3, "class": "hof"}, world); } });
  function ancestry(id) {
    var seen = {}, out = [], stack = [id];
    while (stack.length) {
      var i = stack.pop();
      if (seen[i] || !byId[i]) { continue; }
      seen[i] = 1; out.push(i);
      byId[i].p.forEach(function (p) { stack.push(p); });
    }
    return out;
  }
  var current = [];
  function highlight(ids, root) {
    current.forEach(function (i) { var n = byId[i]; circles[i].setAttribute("class", n.f === null ? "node fail" : "node"); });
    var set = {}, hd = [];
    ids.forEach(function (i) { set[i] = 1; });
    ids.forEach(function (i) {
      var n = byId[i];
      circles[i].setAttribute("class", (n.f === null ? "node fail hl" : "node hl") + (i === root ? " root" : ""));
      n.p.forEach(function (p) { if (set[p]) { var q = byId[p]; hd.push("M" + X(q) + "," + Y(q) + "L" + X(n) + "," + Y(n)); } });
    });
    hpath.setAttribute("d", hd.join(""));
    current = ids;
    var r = byId[root];
    info.textContent = D.nodes.length + " individuals, " + D.generations.length + " generations" +
      (r ? "; highlighted: ancestry of #" + root + " (" + ids.length + " nodes), fitness " + fmt(r.f) : "") +
      (D.note ? "; " + D.note : "");
  }
  function fmt(f) { return f === null ? "-" : (Math.abs(f) >= 1e4 || (f !== 0 && Math.abs(f) < 1e-3) ? f.toExponential(4) : +f.toFixed(6)); }
  function showBest() { if (D.best !== null && byId[D.best]) { highlight(D.highlight.filter(function (i) { return byId[i]; }), D.best); } else { highlight([], null); } }
  showBest();
  function idOf(evt) { var t = evt.target; var v = t && t.getAttribute ? t.getAttribute("data-id") : null; return v === null ? null : +v; }
  svg.addEventListener("mousemove", function (evt) {
    var id = idOf(evt);
    if (id === null) { tip.style.display = "none"; return; }
    var n = byId[id];
    tip.textContent = "#" + n.id + "  generation " + n.g + "  " + n.op + "\nfitness " + fmt(n.f) + "  (" + n.st + ")" +
      "\nparents " + (n.p.length ? n.p.map(function (p) { return "#" + p; }).join(", ") : "none") + "\n" + n.e + (n.m ? "\n" + n.m : "");
    tip.style.display = "block";
    tip.style.left = (evt.clientX + 14) + "px";
    tip.style.top = (evt.clientY + 10) + "px";
  });
  svg.addEventListener("mouseleave", function () { tip.style.display = "none"; });
  var drag = null, moved = false;
  svg.addEventListener("mousedown", function (evt) { drag = [evt.clientX, evt.clientY, vb[0], vb[1]]; moved = false; });
  window.addEventListener("mouseup", function () { drag = null; });
  window.addEventListener("mousemove", function (evt) {
    if (!drag) { return; }
    var box = svg.getBoundingClientRect(), s = vb[2] / Math.max(box.width, 1);
    if (Math.abs(evt.clientX - drag[0]) + Math.abs(evt.clientY - drag[1]) > 3) { moved = true; }
    vb[0] = drag[2] - (evt.clientX - drag[0]) * s; vb[1] = drag[3] - (evt.clientY - drag[1]) * s; setView();
  });
  svg.addEventListener("click", function (evt) {
    if (moved) { return; }
    var id = idOf(evt);
    if (id !== null) { highlight(ancestry(id), id); }
  });
  svg.addEventListener("wheel", function (evt) {
    evt.preventDefault();
    var box = svg.getBoundingClientRect(), k = evt.deltaY > 0 ? 1.2 : 1 / 1.2;
    var mx = vb[0] + (evt.clientX - box.left) / Math.max(box.width, 1) * vb[2];
    var my = vb[1] + (evt.clientY - box.top) / Math.max(box.height, 1) * vb[3];
    vb = [mx - (mx - vb[0]) * k, my - (my - vb[1]) * k, vb[2] * k, vb[3] * k]; setView();
  }, {passive: false});
  document.getElementById("bestbtn").addEventListener("click", showBest);
  document.getElementById("goto").addEventListener("change", function (evt) {
    var id = parseInt(evt.target.value, 10), n = byId[id];
    if (!n) { info.textContent = "no individual #" + evt.target.value + " on this page"; return; }
    highlight(ancestry(id), id);
    vb = [X(n) - vb[2] / 2, Y(n) - vb[3] / 2, vb[2], vb[3]]; setView();
  });
  window.gpGenealogy = {data: D, highlight: highlight, ancestry: ancestry, current: function () { return current.slice(); }};
})();
</script>
</body>
</html>
"""
