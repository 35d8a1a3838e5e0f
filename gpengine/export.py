"""`gpengine export`: the found activation as a standalone PyTorch file and as formulas.

What a user takes away from a search is one function; the export makes it
usable without gpengine installed. The generated file imports only torch and
holds:

* `EvolvedActivation(channels)`: the expression with its learnable
  per-channel parameters, computed exactly as the BNN evaluators train it
  (`evaluators/torch_expr.py`): same operations in the same order, the same
  parameter layout (one ``weight`` of shape (n_params, channels), so a
  trained state_dict loads as is), the same broadcast of constant outputs;
* `BinaryActivation(channels, clip)`: sign(clip(AF(x), -c, c)) with sign(0) =
  +1 and the straight-through estimator (gradient = mask |AF(x)| <= c times
  AF'(x)), as in `evaluators/bnn_cifar/model.py`;
* the expression as gpengine text, as sympy-parsable text (parameters are
  symbols s_0, b_1, beta_2, param_3 numbered like the weight rows), and as
  LaTeX, both written here from the tree (no sympy needed, nothing parsed by
  `eval`).

The code is generated as text: gpengine itself never imports torch.
"""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path
from typing import Any

import click

from gpengine.errors import GpengineError
from gpengine.export_forms import ExportError, fill, form_of
from gpengine.expr import CONST, OP, PARAM, VAR, Expr
from gpengine.numeric import param_rows, param_sites

DEFAULT_CLIP = 1.3  # GAAF's Hardtanh bound; every bnn-cifar profile uses it unless --set clip=...

__all__ = ["DEFAULT_CLIP", "ExportError", "export_activation", "latex_text", "module_source", "sympy_text"]


# --------------------------------------------------------------------- formulas
def _param_symbols(expr: Expr, pset: Any, latex: bool) -> list[str]:
    out = []
    for k, site in enumerate(param_sites(expr, pset)):
        base = {"beta": r"\beta"}.get(site.name, "p" if site.name == "param" else site.name) if latex else site.name
        out.append(f"{base}_{{{k}}}" if latex else f"{base}_{k}")
    return out


def _const(value: float, latex: bool) -> tuple[str, bool]:
    text = repr(float(value))
    if latex:
        text = f"{value:.6g}"
        if "e" in text:
            mant, exp = text.split("e")
            text = f"{mant} \\cdot 10^{{{int(exp)}}}"
    return text, not (text.startswith("-") or (latex and "cdot" in text))


def _formula(expr: Expr, pset: Any, latex: bool) -> str:
    """Walk the prefix array backwards with a stack of (text, atomic)."""
    symbols = _param_symbols(expr, pset, latex)
    rows: list[list[int]] = []  # parameter rows owned by each node, in prefix order
    row = 0
    for node in expr.nodes:
        n = len(pset[node.name].params) if node.kind == OP else (1 if node.kind == PARAM else 0)
        rows.append(list(range(row, row + n)))
        row += n
    stack: list[tuple[str, bool]] = []
    for i in range(len(expr.nodes) - 1, -1, -1):
        node = expr.nodes[i]
        if node.kind == VAR:
            stack.append(("x", True))
        elif node.kind == CONST:
            stack.append(_const(node.value, latex))
        elif node.kind == PARAM:
            stack.append((symbols[rows[i][0]], True))
        else:
            prim = pset[node.name]
            form = form_of(prim)
            args = [stack.pop() for _ in range(node.arity)]
            if node.name == "ident" and form.sympy == "@r0":
                stack.append(args[0])
                continue
            wrap = (r"\left({}\right)" if latex else "({})")
            wrapped = [t if atomic else wrap.format(t) for t, atomic in args]
            template = form.latex if latex else form.sympy
            text = fill(template, wrapped, [t for t, _ in args], [symbols[r] for r in rows[i]])
            stack.append((text, form.atomic))
    return stack[0][0]


def sympy_text(expr: Expr, pset: Any) -> str:
    """Text `sympy.parse_expr` reads (x and parameter symbols; Abs, Max, Piecewise, ...)."""
    return _formula(expr, pset, latex=False)


def latex_text(expr: Expr, pset: Any) -> str:
    return _formula(expr, pset, latex=True)


# ------------------------------------------------------------------ torch code
def forward_lines(expr: Expr, pset: Any) -> tuple[list[str], str, bool]:
    """Straight-line torch statements of `expr` over `x` and `p[row]`; (lines, output operand, uses x)."""
    rows = param_rows(expr, pset)
    lines: list[str] = []
    stack: list[str] = []
    consts = 0
    regs = 0
    for i in range(len(expr.nodes) - 1, -1, -1):
        node = expr.nodes[i]
        if node.kind == VAR:
            stack.append("x")
        elif node.kind == CONST:
            name = f"c{consts}"
            consts += 1
            lines.append(f"{name} = torch.full((), {float(node.value)!r}, dtype=x.dtype, device=x.device)")
            stack.append(name)
        elif node.kind == PARAM:
            stack.append(f"p[{rows[i][0]}]")
        else:
            form = form_of(pset[node.name])
            args = [stack.pop() for _ in range(node.arity)]
            regs += 1
            name = f"v{regs}"
            lines.append(f"{name} = {fill(form.torch, args, args, [f'p[{r}]' for r in rows[i]])}")
            stack.append(name)
    uses_x = any(n.kind == VAR for n in expr.nodes)
    return lines, stack[0], uses_x


# The generated file is torch code, so its template lives with the primitives' torch
# forms (primitives/templates), not in the core, which never imports torch.
_TEMPLATE = (resources.files("primitives") / "templates" / "activation_module.py.tmpl").read_text()


def module_source(expr: Expr, pset: Any, *, clip: float = DEFAULT_CLIP, origin: str = "", source: str = "") -> str:
    """The text of the standalone torch module (see the module docstring)."""
    if not (isinstance(clip, (int, float)) and math.isfinite(clip) and clip > 0):
        raise GpengineError(f"clip must be a positive number (got {clip!r})")
    lines, out, uses_x = forward_lines(expr, pset)
    sites = param_sites(expr, pset)
    names = tuple((sym, float(s.init)) for sym, s in zip(_param_symbols(expr, pset, latex=False), sites))
    param_doc = ", ".join(n for n, _ in names) or "none"
    return _TEMPLATE.format(
        origin=origin,
        text=str(expr),
        param_doc=param_doc,
        clip=float(clip),
        expression=str(expr),
        sympy=sympy_text(expr, pset),
        latex=latex_text(expr, pset),
        names=names,
        source=source,
        body="\n".join("        " + line for line in lines),
        out=out,
        broadcast="out.shape != x.shape" if uses_x else "True",
    )


def export_activation(expr: Expr, pset: Any, path: str | Path, **kwargs: Any) -> Path:
    from gpengine.paths import write_output

    text = module_source(expr, pset, **kwargs)
    compile(text, str(path), "exec")  # a syntax check of our own output; nothing is run
    return write_output(path, text)


# ------------------------------------------------------------------------ CLI
@click.command("export")
@click.argument("search")
@click.option("--id", "id_", type=int, help="Individual to export (default: the best).")
@click.option("--out", "out", type=click.Path(dir_okay=False), help="Output file (default: activation_<id>.py).")
@click.option("--clip", type=float, help="Binariser clip c (default: the search's clip option, else 1.3).")
@click.option("--runs-dir", default="runs", show_default=True, help="Folder holding runs/<search>/.")
@click.option("--tracking-uri", help="MLflow tracking URI, for searches not in --runs-dir.")
def export(search, id_, out, clip, runs_dir, tracking_uri):
    """Write SEARCH's best activation (or --id) as a standalone PyTorch module, with sympy text and LaTeX."""
    from gpengine import saved_search
    from gpengine.expr_text import parse
    from primitives import get_set

    saved = saved_search.load(search, runs_dir=runs_dir, tracking_uri=tracking_uri, want_run=False)
    row = saved.best(id_)
    pset = get_set(saved.primitives)
    expr = parse(row["expr"], pset)
    if clip is None:
        clip = saved.evaluator_options.get("clip") or DEFAULT_CLIP
    fitness = row["fitness"]
    origin = f" (search {saved.search_id}, individual #{row['id']}, fitness {fitness:.6g})"
    path = export_activation(expr, pset, out or f"activation_{row['id']}.py", clip=float(clip), origin=origin,
                             source=f"{saved.search_id}#{row['id']}")
    click.echo(f"wrote {path}: #{row['id']} fitness {fitness:.6g}")
    click.echo(f"  f(x)  = {expr}")
    click.echo(f"  sympy : {sympy_text(expr, pset)}")
    click.echo(f"  LaTeX : {latex_text(expr, pset)}")
