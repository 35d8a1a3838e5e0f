"""The HTML of `gpengine report`, kept apart from the numbers it shows.

Plain string building with `html.escape` on every value that came from a
search (expressions, messages, options): a formula such as ``x < 1`` or an
option holding markup can never break the page. Inline CSS only and no
script at all, so the page renders the same offline, in a mail client, and
in MLflow's sandboxed artifact viewer.
"""

from __future__ import annotations

import html
import math
import time
from typing import Any

from gpengine.evaluator import MEASURED

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;max-width:1100px;margin:24px auto;padding:0 16px}
h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eee;vertical-align:top}
th{background:#f6f6f6}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px}pre{background:#f6f8fa;padding:10px;overflow-x:auto;border-radius:4px}
.muted{color:#666}.grid{display:flex;flex-wrap:wrap;gap:12px}.grid figure{margin:0}figcaption{font-size:12px;color:#555}
img{max-width:100%;height:auto;border:1px solid #eee}.svgbox{overflow-x:auto;border:1px solid #eee}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(value: Any, digits: int = 6) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "&ndash;"
    return f"{value:.{digits}g}"


def _latex(expr_text: str, primitives: str) -> str:
    from gpengine.export import latex_text
    from gpengine.expr_text import parse
    from primitives import get_set

    try:
        pset = get_set(primitives)
        return latex_text(parse(expr_text, pset), pset)
    except Exception:  # noqa: BLE001 - a formula without a LaTeX form still has its text
        return ""


def _best_table(saved: Any, best: list[dict[str, Any]], stats: dict[tuple[str, float], dict[str, float]]) -> str:
    if not best:
        return '<p class="muted">No individual produced a fitness.</p>'
    head = ("<tr><th>#</th><th>id</th><th>gen</th><th>formula</th><th>fitness</th>"
            "<th>mean &plusmn; std (n)</th><th>cost (s)</th></tr>")
    body = []
    for rank, r in enumerate(best, start=1):
        s = stats.get((r.get("expr_hash") or r["expr"], float(r.get("budget") or 1.0)), {})
        spread = f"{_num(s.get('mean'))} &plusmn; {_num(s.get('std'), 3)} ({int(s.get('n', 0))})"
        latex = _latex(r["expr"], saved.primitives)
        formula = f"<code>{_e(r['expr'])}</code>"
        if latex:
            formula += f'<br><span class="muted">LaTeX</span> <code>{_e(latex)}</code>'
        body.append(
            f"<tr><td>{rank}</td><td>{r['id']}</td><td>{r['generation']}</td><td>{formula}</td>"
            f'<td class="num">{_num(r["fitness"])}</td><td class="num">{spread}</td>'
            f'<td class="num">{_num(s.get("cost"), 4)}</td></tr>'
        )
    return f"<table>{head}{''.join(body)}</table>"


def _figure(uri: str | None, caption: str) -> str:
    if not uri:
        return ""
    return f'<figure><img alt="{_e(caption)}" src="{uri}"><figcaption>{_e(caption)}</figcaption></figure>'


def _generation_table(gens: list[dict[str, float]]) -> str:
    cols = ("generation", "best", "mean", "median", "diversity", "evaluations", "failures", "cost")
    head = "".join(f"<th>{c}</th>" for c in cols)
    rows = "".join("<tr>" + "".join(f'<td class="num">{_num(g[c], 5)}</td>' for c in cols) + "</tr>" for g in gens)
    return f"<details><summary>per-generation numbers</summary><table><tr>{head}</tr>{rows}</table></details>"


def render(*, saved: Any, best: list[dict[str, Any]], stats: dict[tuple[str, float], dict[str, float]],
           gens: list[dict[str, float]], pictures: dict[str, Any], genealogy_svg: str,
           command: str, toml: str) -> str:
    rows = saved.rows
    failed = sum(1 for r in rows if r.get("status") not in MEASURED)
    from gpengine.report import spent

    cost = sum(spent(r) for r in rows)
    top = best[0] if best else None
    summary = (f"evaluator <b>{_e(saved.evaluator)}</b>, primitive set <b>{_e(saved.primitives)}</b>; "
               f"{len(rows)} individuals over {len(gens)} generations, {failed} failed or rejected; "
               f"{_num(cost, 4)} evaluator seconds. Source: <code>{_e(saved.source)}</code>.")
    if saved.run is not None:
        summary += f" MLflow run <code>{_e(saved.run.info.run_id)}</code>."
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>gpengine report: {_e(saved.search_id)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>Search {_e(saved.search_id)}</h1>",
        f'<p class="muted">{summary}</p>',
    ]
    if top is not None:
        parts.append(f"<p>Best: <b>#{top['id']}</b> fitness <b>{_num(top['fitness'])}</b>: "
                     f"<code>{_e(top['expr'])}</code></p>")
    parts += ["<h2>Best individuals</h2>", _best_table(saved, best, stats),
              '<p class="muted">Mean and spread are over replicates: every evaluation of the same expression '
              "(by canonical hash) at the same budget, each seed counted once.</p>"]
    acts = "".join(_figure(pictures["activations"].get(r["id"]), f"#{r['id']}: {r['expr']}") for r in best)
    if acts:
        parts += ["<h2>Activations and derivatives</h2>",
                  '<p class="muted">f(x) solid, f\'(x) dashed; learnable parameters at their initial values.</p>',
                  f'<div class="grid">{acts}</div>']
    parts += ["<h2>Progress</h2>", '<div class="grid">',
              _figure(pictures.get("fitness"), "fitness per generation (best, mean and median of the population at its end)"),
              _figure(pictures.get("compute"), "best fitness against cumulative evaluator seconds"),
              _figure(pictures.get("diversity"), "diversity: distinct behaviour fingerprints per individual"),
              "</div>", _generation_table(gens)]
    if genealogy_svg:
        parts += ["<h2>Genealogy of the best</h2>", f'<div class="svgbox">{genealogy_svg}</div>']
    parts += ["<h2>Reproduce</h2>", "<p>Command:</p>", f"<pre>{_e(command)}</pre>",
              "<p>Or as a config file (<code>gpengine run --config search.toml</code>):</p>", f"<pre>{_e(toml)}</pre>",
              f'<p class="muted">Written by gpengine report on {_e(time.strftime("%Y-%m-%d %H:%M"))}.</p>',
              "</body></html>"]
    return "\n".join(p for p in parts if p)
