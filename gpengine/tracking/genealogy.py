"""The genealogy graph of a search, and the pictures drawn from it.

Built from lineage rows (see `lineage`), so it works the same on a live search
and on one read back from MLflow. Two renderings:

* `write_html`: a self-contained page (inline script and style, no CDN, no
  fonts, no network) that draws the whole DAG with one column per generation,
  the best's ancestry highlighted, and expression, fitness and operator on
  hover. The data sits in a JSON block the script reads; it runs inside the
  MLflow artifact viewer's sandboxed iframe, which is why nothing is fetched
  and no storage API is touched.
* `write_svg`: a static picture of the best's ancestry only, readable in any
  image viewer and small enough for a report.

The layout is computed here, in Python, once: both renderings agree and tests
can check it without a browser.
"""

from __future__ import annotations

import html
import json
import math
from collections import defaultdict, deque
from pathlib import Path
from typing import Any, Iterable

from gpengine.tracking.lineage import is_ok, rank_key, standing

#: above this many individuals the page keeps only notable ones (a browser copes with ~20k nodes)
MAX_PAGE_NODES = 20000


class Genealogy:
    """Who descends from whom. Parents missing from the rows are ignored, not invented."""

    def __init__(self, rows: Iterable[dict[str, Any]]):
        self.rows: dict[int, dict[str, Any]] = {int(r["id"]): r for r in rows}
        self._children: dict[int, list[int]] = defaultdict(list)
        for r in self.rows.values():
            for p in r["parent_ids"]:
                if p in self.rows:
                    self._children[p].append(r["id"])

    def __contains__(self, id_: object) -> bool:
        return id_ in self.rows

    def __len__(self) -> int:
        return len(self.rows)

    def parents(self, id_: int) -> tuple[int, ...]:
        return tuple(p for p in self.rows[id_]["parent_ids"] if p in self.rows)

    def children(self, id_: int) -> list[int]:
        return list(self._children.get(id_, ()))

    def ancestors(self, id_: int, include_self: bool = True) -> list[int]:
        """Every ancestor of `id_` (breadth first, each once); unknown ids give []."""
        if id_ not in self.rows:
            return []
        seen = {id_}
        order = [id_] if include_self else []
        queue = deque([id_])
        while queue:
            for p in self.parents(queue.popleft()):
                if p not in seen:
                    seen.add(p)
                    order.append(p)
                    queue.append(p)
        return order

    def best(self) -> dict[str, Any] | None:
        ranked = standing(self.rows.values())
        return ranked[0] if ranked else None

    def best_per_generation(self) -> dict[int, dict[str, Any]]:
        out: dict[int, dict[str, Any]] = {}
        for r in sorted(self.rows.values(), key=rank_key):
            if is_ok(r):
                out.setdefault(r["generation"], r)
        return out

    def notable(self, extra: Iterable[int] = ()) -> set[int]:
        """Best of each generation, the extra ids (hall of fame), and all ancestors of the best."""
        ids = {r["id"] for r in self.best_per_generation().values()}
        ids.update(i for i in extra if i in self.rows)
        best = self.best()
        if best is not None:
            ids.update(self.ancestors(best["id"]))
        return ids

    def layout(self, ids: Iterable[int] | None = None) -> dict[int, tuple[int, int]]:
        """(column, row) of each node: column = generation, rows ordered to shorten edges.

        Generation 0 is sorted best first; each later generation by the mean row
        of its parents (barycentre heuristic), then by fitness. Cheap, and it
        keeps families together, which is what a reader follows.
        """
        keep = set(self.rows) if ids is None else {i for i in ids if i in self.rows}
        by_gen: dict[int, list[int]] = defaultdict(list)
        for i in keep:
            by_gen[self.rows[i]["generation"]].append(i)
        pos: dict[int, tuple[int, int]] = {}
        for col, gen in enumerate(sorted(by_gen)):
            def key(i: int) -> tuple[float, tuple[float, int]]:
                ys = [pos[p][1] for p in self.parents(i) if p in pos]
                return (sum(ys) / len(ys) if ys else math.inf, rank_key(self.rows[i]))

            for row, i in enumerate(sorted(by_gen[gen], key=key)):
                pos[i] = (col, row)
        return pos


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and math.isfinite(x) else None


def page_data(g: Genealogy, title: str = "", hall_of_fame: Iterable[int] = ()) -> dict[str, Any]:
    """Everything the page script needs, as plain JSON-able values."""
    best = g.best()
    hof = [i for i in hall_of_fame if i in g]
    ids: Iterable[int] | None = None
    note = ""
    if len(g) > MAX_PAGE_NODES:
        ids = g.notable(hof)
        note = f"{len(g)} individuals: showing the {len(ids)} notable ones; the lineage CSV has everyone."
    pos = g.layout(ids)
    gens = sorted({g.rows[i]["generation"] for i in pos})
    nodes = []
    for i, (col, row) in sorted(pos.items()):
        r = g.rows[i]
        nodes.append(
            {
                "id": i,
                "g": r["generation"],
                "c": col,
                "r": row,
                "op": r["operator"],
                "f": _num(r["fitness"]) if is_ok(r) else None,
                "st": r["status"],
                "e": r["expr"],
                "p": [p for p in g.parents(i) if p in pos],
                "m": (r.get("message") or "")[:200],
            }
        )
    return {
        "title": title,
        "note": note,
        "generations": gens,
        "best": best["id"] if best else None,
        "highlight": g.ancestors(best["id"]) if best else [],
        "hof": hof,
        "nodes": nodes,
    }


def write_html(g: Genealogy, path: str | Path, title: str = "genealogy", hall_of_fame: Iterable[int] = ()) -> Path:
    """The self-contained genealogy page (see module docstring)."""
    data = json.dumps(page_data(g, title, hall_of_fame), separators=(",", ":"), allow_nan=False)
    # no "<", ">" or "&" at all inside the <script> block: it can never be closed early
    data = data.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    from gpengine.tracking.genealogy_page import TEMPLATE

    text = TEMPLATE.replace("__TITLE__", html.escape(title)).replace("__DATA__", data)
    path = Path(path)
    path.write_text(text, encoding="utf-8")
    return path


def _fmt(f: float | None) -> str:
    return "-" if f is None else f"{f:.4g}"


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "\u2026"


#: widest glyph advances of the 11 px sans-serif text (DejaVu Sans: digits 7.0 px, bold 7.7 px), so that a
#: clipped line stays inside its box whatever the font: 34 characters overflowed a 200 px box
CHAR_PX, BOLD_CHAR_PX = 7.0, 7.7


def ancestry_svg(g: Genealogy, root: int | None = None) -> str:
    """SVG text of `root`'s ancestry (default: the best), one column per generation.

    Each box: id and generation, the fitness right-aligned (never clipped), the operator, the
    expression (clipped to the box)."""
    if root is None:
        best = g.best()
        root = best["id"] if best else None
    ids = g.ancestors(root) if root is not None else []
    w, h, gx, gy, pad = 240, 58, 60, 14, 20
    pos = g.layout(ids)
    ncol = max((c for c, _ in pos.values()), default=-1) + 1
    nrow = max((r for _, r in pos.values()), default=-1) + 1
    width = max(pad * 2 + ncol * w + max(ncol - 1, 0) * gx, 320)
    height = pad * 2 + 24 + max(nrow, 1) * (h + gy)

    def xy(i: int) -> tuple[float, float]:
        c, r = pos[i]
        return pad + c * (w + gx), pad + 24 + r * (h + gy)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
    ]
    caption = f"ancestry of #{root}" if root is not None else "no individual with a fitness"
    out.append(f'<text x="{pad}" y="{pad + 6}" font-size="13" font-weight="bold">{html.escape(caption)}</text>')
    for i in ids:
        x1, y1 = xy(i)
        for p in g.parents(i):
            if p in pos:
                x0, y0 = xy(p)
                out.append(
                    f'<path d="M{x0 + w},{y0 + h / 2} C{x0 + w + gx / 2},{y0 + h / 2} '
                    f'{x1 - gx / 2},{y1 + h / 2} {x1},{y1 + h / 2}" fill="none" stroke="#c0392b" stroke-width="1.5"/>'
                )
    for i in ids:
        r = g.rows[i]
        x, y = xy(i)
        fill = "#fdebd0" if i == root else "#eef3fb"
        f = _num(r["fitness"]) if is_ok(r) else None
        tip = html.escape(f"#{i} {r['operator']} fitness={_fmt(f)}\n{r['expr']}")
        out.append(f"<g><title>{tip}</title>")
        out.append(f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="5" fill="{fill}" stroke="#34495e"/>')
        fit = _fmt(f)
        room = w - 12 - 10 - len(fit) * BOLD_CHAR_PX  # beside the right-aligned fitness
        head = _clip(f"#{i}  g{r['generation']}", max(int(room // BOLD_CHAR_PX), 4))
        line = int((w - 12) // CHAR_PX)
        out.append(f'<text x="{x + 6}" y="{y + 17}" font-weight="bold">{html.escape(head)}</text>')
        out.append(f'<text x="{x + w - 6}" y="{y + 17}" font-weight="bold" text-anchor="end">{html.escape(fit)}</text>')
        out.append(f'<text x="{x + 6}" y="{y + 33}" fill="#555">{html.escape(_clip(str(r["operator"]), line))}</text>')
        out.append(f'<text x="{x + 6}" y="{y + 50}">{html.escape(_clip(r["expr"], line))}</text>')
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out)


def write_svg(g: Genealogy, path: str | Path, root: int | None = None) -> Path:
    path = Path(path)
    path.write_text(ancestry_svg(g, root), encoding="utf-8")
    return path
