"""Genealogy graph, lineage CSV, the offline HTML page and the ancestry SVG."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest

from gpengine.tracking import genealogy, lineage
from gpengine.tracking.genealogy import Genealogy, write_html, write_svg
from tracking_stream import synthetic_search


@pytest.fixture(scope="module")
def stream():
    start, gens, end, inds = synthetic_search(30, population=8)
    return inds, end


def ancestors_of(inds, id_):
    """Independent ancestry: plain recursion over the engine's Individuals."""
    by_id = {i.id: i for i in inds}
    out = set()

    def walk(i):
        if i in out:
            return
        out.add(i)
        for p in by_id[i].parent_ids:
            walk(p)

    walk(id_)
    return out


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for k, v in attrs:
            if k in ("src", "href", "action", "poster", "data") and v:
                self.refs.append(v)


def page_json(text):
    m = re.search(r'<script type="application/json" id="gp-data">(.*?)</script>', text, re.S)
    assert m, "no data block"
    return json.loads(m.group(1))


def test_ancestry_and_best(stream):
    inds, end = stream
    g = Genealogy(lineage.row_of(i) for i in inds)
    assert g.best()["id"] == end.best.id
    assert set(g.ancestors(end.best.id)) == ancestors_of(inds, end.best.id)
    assert g.ancestors(10_000) == []
    for ind in inds:
        assert g.parents(ind.id) == ind.parent_ids
        for p in ind.parent_ids:
            assert ind.id in g.children(p)


def test_layout_columns_are_generations(stream):
    inds, _ = stream
    g = Genealogy(lineage.row_of(i) for i in inds)
    pos = g.layout()
    assert set(pos) == {i.id for i in inds}
    for ind in inds:
        assert pos[ind.id][0] == ind.generation
    cells = list(pos.values())
    assert len(cells) == len(set(cells)), "two nodes share a cell"


def test_csv_round_trip_keeps_everything(stream, tmp_path):
    inds, _ = stream
    rows = [lineage.row_of(i) for i in inds]
    path = lineage.write_csv(rows, tmp_path / "lineage.csv")
    header = path.read_text().splitlines()[0].split(",")
    assert tuple(header) == lineage.COLUMNS
    back = lineage.read_csv(path)
    assert len(back) == len(rows)
    for a, b in zip(rows, back):
        for k in lineage.COLUMNS:
            if isinstance(a[k], float) and math.isnan(a[k]):
                assert math.isnan(b[k])
            else:
                assert a[k] == b[k], (k, a[k], b[k])


def test_html_is_self_contained_and_complete(stream, tmp_path):
    inds, end = stream
    g = Genealogy(lineage.row_of(i) for i in inds)
    path = write_html(g, tmp_path / "g.html", title="t <b>", hall_of_fame=[h.id for h in end.hall_of_fame])
    text = path.read_text()
    refs = _Refs()
    refs.feed(text)
    external = [r for r in refs.refs if re.match(r"^\s*(https?:)?//", r)]
    assert external == [], external
    assert "<link" not in text and "@import" not in text and "url(" not in text
    assert "t &lt;b&gt;" in text
    data = page_json(text)
    assert {n["id"] for n in data["nodes"]} == {i.id for i in inds}
    for i in inds:
        assert f'"id":{i.id},' in text
    assert data["best"] == end.best.id
    assert set(data["highlight"]) == ancestors_of(inds, end.best.id)
    by_id = {n["id"]: n for n in data["nodes"]}
    for i in inds:
        assert by_id[i.id]["e"] == str(i.expr) and by_id[i.id]["op"] == i.operator
        assert by_id[i.id]["p"] == list(i.parent_ids)
    assert refs.tags.count("script") == 2


def test_hostile_text_cannot_break_out_of_the_data_block(tmp_path):
    rows = [
        {**dict.fromkeys(lineage.COLUMNS, ""), "id": 0, "generation": 0, "parent_ids": (), "fitness": 1.0,
         "status": "ok", "operator": "init", "expr": "x", "message": "</script><script>alert(1)</script>"},
    ]
    text = write_html(Genealogy(rows), tmp_path / "h.html").read_text()
    assert page_json(text)["nodes"][0]["m"].startswith("</script>")
    assert text.count("<script") == 2


def test_big_searches_show_notable_ones(stream, tmp_path, monkeypatch):
    inds, end = stream
    monkeypatch.setattr(genealogy, "MAX_PAGE_NODES", 10)
    g = Genealogy(lineage.row_of(i) for i in inds)
    data = page_json(write_html(g, tmp_path / "big.html").read_text())
    assert {n["id"] for n in data["nodes"]} == g.notable()
    assert ancestors_of(inds, end.best.id) <= {n["id"] for n in data["nodes"]}
    assert "notable" in data["note"]


def test_svg_parses_and_shows_the_ancestry(stream, tmp_path):
    inds, end = stream
    g = Genealogy(lineage.row_of(i) for i in inds)
    path = write_svg(g, tmp_path / "a.svg")
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")
    titles = [t.text for t in root.iter("{http://www.w3.org/2000/svg}title")]
    shown = {int(re.match(r"#(\d+)", t).group(1)) for t in titles}
    assert shown == ancestors_of(inds, end.best.id)
    empty = ET.fromstring(genealogy.ancestry_svg(Genealogy([])))
    assert empty.tag.endswith("svg")


def test_svg_text_stays_in_its_box_and_keeps_the_fitness_whole():
    # A 15-generation symreg search's best ancestry had 27 of its lines past the 200 px boxes,
    # and a clipped header ("#634  g6  mutate-constant  -0.0359") could lose the fitness itself.
    def row(i, parents, op, fitness, expr):
        return {"id": i, "generation": i // 100, "operator": op, "parent_ids": parents, "expr": expr,
                "status": "ok", "fitness": fitness}

    long_expr = "minzero(" * 12 + "x" + ")" * 12
    rows = [row(1234, (), "init-ramped", -1.5, "x"), row(12345, (1234,), "mutate-constant", -0.000465123, long_expr)]
    root = ET.fromstring(genealogy.ancestry_svg(Genealogy(rows)))
    ns = "{http://www.w3.org/2000/svg}"
    boxes = [float(r.get("width")) for r in root.iter(ns + "rect") if r.get("rx")]
    texts = [t for g in root.iter(ns + "g") for t in g.iter(ns + "text")]
    shown = [t.text for t in texts]
    assert "-0.0004651" in shown and "mutate-constant" in shown and "#12345  g123" in shown
    for t in texts:
        px = genealogy.BOLD_CHAR_PX if t.get("font-weight") == "bold" else genealogy.CHAR_PX
        assert len(t.text) * px <= boxes[0] - 12, t.text
    heads = [t for t in texts if t.get("font-weight") == "bold"]
    for left, right in zip(heads[0::2], heads[1::2]):  # id and generation, then the fitness at the right edge
        assert right.get("text-anchor") == "end"
        assert (len(left.text) + len(right.text)) * genealogy.BOLD_CHAR_PX <= boxes[0] - 12


# A minimal DOM, enough for the page's script: it proves the script runs without a
# network or a browser and draws what it should (no Chromium in this environment).
NODE_HARNESS = r"""
const fs = require('fs'), vm = require('vm');
const html = fs.readFileSync(process.argv[2], 'utf8');
const data = html.match(/<script type="application\/json" id="gp-data">([\s\S]*?)<\/script>/)[1];
const code = html.match(/<script>([\s\S]*?)<\/script>/)[1];
class El {
  constructor(tag) { this.tag = tag; this.attrs = {}; this.children = []; this.style = {}; this.listeners = {}; this.textContent = ''; }
  setAttribute(k, v) { this.attrs[k] = String(v); }
  getAttribute(k) { return k in this.attrs ? this.attrs[k] : null; }
  appendChild(c) { this.children.push(c); return c; }
  addEventListener(t, f) { this.listeners[t] = f; }
  getBoundingClientRect() { return {left: 0, top: 0, width: 800, height: 600}; }
}
const els = {dag: new El('svg'), tip: new El('div'), info: new El('span'), goto: new El('input'), bestbtn: new El('button')};
els['gp-data'] = new El('script'); els['gp-data'].textContent = data;
const win = {addEventListener() {}};
const document = {getElementById: (id) => els[id] || null, createElementNS: (ns, tag) => new El(tag)};
vm.runInNewContext(code, {document, window: win, JSON, Math, Object, parseInt, Infinity});
function all(e, out) { out.push(e); e.children.forEach((c) => all(c, out)); return out; }
const circles = all(els.dag, []).filter((e) => e.tag === 'circle' && 'data-id' in e.attrs);
const rings = all(els.dag, []).filter((e) => e.tag === 'circle' && e.attrs['class'] === 'hof');
const hl = () => circles.filter((c) => / hl/.test(c.attrs['class'])).map((c) => +c.attrs['data-id']);
const out = {circles: circles.map((c) => +c.attrs['data-id']), highlighted: hl(), viewBox: els.dag.attrs.viewBox,
             info: els.info.textContent, rings: rings.length};
const target = circles[circles.length - 1];
els.dag.listeners.mousemove({target, clientX: 5, clientY: 5});
out.tip = els.tip.textContent; out.tipShown = els.tip.style.display;
els.dag.listeners.click({target});
out.clicked = +target.attrs['data-id']; out.afterClick = hl();
console.log(JSON.stringify(out));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node.js not installed")
def test_page_script_renders_offline(stream, tmp_path):
    inds, end = stream
    g = Genealogy(lineage.row_of(i) for i in inds)
    page = write_html(g, tmp_path / "g.html", hall_of_fame=[h.id for h in end.hall_of_fame])
    harness = tmp_path / "harness.js"
    harness.write_text(NODE_HARNESS)
    proc = subprocess.run(["node", str(harness), str(page)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert sorted(out["circles"]) == sorted(i.id for i in inds)
    assert set(out["highlighted"]) == ancestors_of(inds, end.best.id)
    assert out["viewBox"] and "30 individuals" in out["info"]
    assert out["rings"] == len(end.hall_of_fame)
    clicked = next(i for i in inds if i.id == out["clicked"])
    assert out["tipShown"] == "block" and str(clicked.expr) in out["tip"] and clicked.operator in out["tip"]
    assert set(out["afterClick"]) == ancestors_of(inds, clicked.id)
