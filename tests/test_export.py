"""`gpengine export`: the standalone module matches the evaluator's activation, values and gradients."""

from __future__ import annotations

import ast
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import gpengine
from gpengine.checkpoint import save_search_file
from gpengine.cli import main
from gpengine.config import SearchConfig
from gpengine.evaluator import Result
from gpengine.export import latex_text, module_source, sympy_text
from gpengine.export_forms import ARITH, GAAF, ExportError
from gpengine.expr_text import parse
from gpengine.individual import Individual
from gpengine.journal import individual_to_json
from primitives import get_set

from evaluators.bnn_cifar.model import binarize
from evaluators.torch_expr import ExprActivation

# Every GAAF primitive appears at least once; parameters, constants, constant outputs, nesting.
GAAF_EXPRS = [
    "blend(sin(scale(x)), shift(x)) + gate(x, -0.5) * param(2.0)",
    "ssqrt(x) - log(x) * cube(cos(x))",
    "ratio(x, square(x)) / sigmoid(tan(atan(x)))",
    "max(erf(x), erfc(x)) - min(expnabs(x), gauss(x))",
    "rbf(relu(x), minzero(x)) + lapl(abs(x), neg(x))",
    "ident(x) + zero(x) + lconst(x)",
    "lconst(x)",
    "sin(1.5)",
    "scale(scale(x))",
    "x",
]
ARITH_EXPRS = ["div(x, sin(x)) + log(cos(x)) - exp(neg(x))", "x * 0.5 - 1.0"]

BLOCK = """
import sys, importlib.abc
class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('gpengine', 'evaluators', 'primitives'):
            raise ImportError('the exported module must not need ' + name)
sys.meta_path.insert(0, _Block())
"""

RUNNER = BLOCK + """
import importlib.util, torch
cases = torch.load(sys.argv[1])
results = []
for k, data in enumerate(cases):
    spec = importlib.util.spec_from_file_location(f'exported{k}', data['path'])
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    out = {}
    for kind in ('act', 'bin'):
        m = mod.EvolvedActivation(data['channels']) if kind == 'act' else mod.BinaryActivation(data['channels'])
        target = m if kind == 'act' else m.act
        if data['state'] is not None:
            target.load_state_dict(data['state'])
        x = data['x'].clone().requires_grad_(True)
        y = m(x)
        if y.requires_grad:
            (y * data['g']).sum().backward()
        w = target.weight.grad if target.weight is not None else None
        out[kind] = (y.detach(), x.grad, w)
    results.append(out)
modules = sorted(k for k in sys.modules if k.split('.')[0] in ('gpengine', 'evaluators', 'primitives'))
torch.save({'results': results, 'modules': modules}, sys.argv[2])
"""


def reference(expr, pset, channels, x, g, clip):
    """Values and gradients of the evaluator's own activation and binariser."""
    torch.manual_seed(0)
    act = ExprActivation(expr, pset, channels)
    if act.weight is not None:
        with torch.no_grad():
            act.weight.copy_(torch.randn_like(act.weight))
    out = {}
    for kind in ("act", "bin"):
        act.zero_grad()
        xx = x.clone().requires_grad_(True)
        y = act(xx) if kind == "act" else binarize(act(xx), clip)
        if y.requires_grad:
            (y * g).sum().backward()
        w = None if act.weight is None else act.weight.grad
        out[kind] = (y.detach(), xx.grad, None if w is None else w.clone())
    return out, (act.state_dict() if act.weight is not None else None)


def inputs(channels: int, clip: float):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(3, channels, 5, 4, generator=gen) * 2
    x[0, 0, 0, :] = torch.tensor([0.0, clip, -clip, -0.0])
    x[1, 1, 1, 1] = math.nan  # NaN in: same values and gradients out (as the trained model handles it)
    g = torch.randn(x.shape, generator=gen)
    return x, g


def run_exported(tmp_path: Path, cases: list[dict]) -> dict:
    """Import each exported file in one fresh interpreter that cannot import gpengine."""
    torch.save(cases, tmp_path / "in.pt")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": ""}  # no repo on the path
    proc = subprocess.run([sys.executable, "-c", RUNNER, str(tmp_path / "in.pt"), str(tmp_path / "out.pt")],
                          capture_output=True, text=True, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    return torch.load(tmp_path / "out.pt")


def assert_same(a, b):
    for u, v in zip(a, b):
        if u is None or v is None:
            assert u is None and v is None
        else:
            torch.testing.assert_close(u, v, rtol=0, atol=0, equal_nan=True)


def test_exported_modules_match_the_evaluator_in_a_fresh_interpreter(tmp_path):
    clip = 1.3
    cases, refs, texts = [], [], []
    for k, (set_name, text) in enumerate([("gaaf", e) for e in GAAF_EXPRS] + [("arith", e) for e in ARITH_EXPRS]):
        pset = get_set(set_name)
        expr = parse(text, pset)
        channels = 3
        x, g = inputs(channels, clip)
        ref, state = reference(expr, pset, channels, x, g, clip)
        path = tmp_path / f"exported_{k}.py"
        path.write_text(module_source(expr, pset, clip=clip))
        cases.append({"path": str(path), "channels": channels, "x": x, "g": g, "state": state})
        refs.append(ref)
        texts.append(text)
    got = run_exported(tmp_path, cases)
    assert got["modules"] == []
    for text, ref, out in zip(texts, refs, got["results"]):
        for kind in ("act", "bin"):
            try:
                assert_same(out[kind], ref[kind])
            except AssertionError as exc:
                raise AssertionError(f"{text} ({kind}): {exc}") from None


def test_exported_file_imports_only_torch():
    pset = get_set("gaaf")
    tree = ast.parse(module_source(parse("blend(sin(x), scale(x))", pset), pset))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module.split(".")[0])
    assert imported == {"torch"}


def test_forms_cover_every_builtin_primitive():
    assert set(GAAF) == set(get_set("gaaf").names())
    assert set(ARITH) == set(get_set("arith").names()) | {"pow"}


def test_binary_activation_is_plus_minus_one_with_sign_zero_positive(tmp_path):
    pset = get_set("gaaf")
    path = tmp_path / "m.py"
    path.write_text(module_source(parse("minzero(x)", pset), pset))
    import importlib.util

    spec = importlib.util.spec_from_file_location("m_export", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    y = mod.BinaryActivation(2)(torch.tensor([[-1.0, 0.0], [2.0, 0.5]]))
    assert y.tolist() == [[-1.0, 1.0], [1.0, 1.0]]
    assert mod.CLIP == 1.3


@pytest.mark.parametrize("text", GAAF_EXPRS[:6])
def test_sympy_text_parses_and_matches_numpy(text):
    sympy = pytest.importorskip("sympy")
    from gpengine.numeric import evaluate, param_sites

    pset = get_set("gaaf")
    expr = parse(text, pset)
    f = sympy.parse_expr(sympy_text(expr, pset))
    xs = np.array([-2.3, -0.7, 0.4, 1.9])
    subs = {f"{'param' if s.name == 'param' else s.name}_{k}": s.init for k, s in enumerate(param_sites(expr, pset))}
    want = evaluate(expr, pset, xs)
    got = [float(f.subs({**{sympy.Symbol(k): v for k, v in subs.items()}, sympy.Symbol("x"): x}).evalf()) for x in xs]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)
    latex = latex_text(expr, pset)
    assert latex.count("{") == latex.count("}") and "@" not in latex


def test_arith_protected_division_in_sympy():
    sympy = pytest.importorskip("sympy")
    pset = get_set("arith")
    f = sympy.parse_expr(sympy_text(parse("div(x, x - 1.0)", pset), pset))
    assert float(f.subs(sympy.Symbol("x"), 1.0)) == 1.0
    assert float(f.subs(sympy.Symbol("x"), 3.0)) == pytest.approx(1.5)


def test_unknown_primitive_form_is_a_clear_error():
    from primitives.registry import Primitive, PrimitiveSet

    odd = PrimitiveSet("odd", [Primitive("twice", 1, lambda a: 2 * a, lambda t, a: 2 * a)])
    with pytest.raises(ExportError, match="twice"):
        module_source(parse("twice(x)", odd), odd)


# ------------------------------------------------------------- from a saved search
def write_search(runs: Path, search_id: str, exprs: list[tuple[str, float]], evaluator: str = "bnn-cifar",
                 primitives: str = "gaaf", options: dict | None = None, generations: int = 2) -> Path:
    """A finished search folder: search.json and a journal of `exprs` (text, fitness; NaN = failed)."""
    folder = runs / search_id
    folder.mkdir(parents=True)
    cfg = SearchConfig(evaluator=evaluator, primitives=primitives, population=max(2, len(exprs) // generations),
                       generations=generations, seed=3, elitism=0)
    save_search_file(folder, search_id, cfg, options or {}, gpengine.__version__)
    pset = get_set(primitives)
    lines = []
    per_gen = max(1, math.ceil(len(exprs) / generations))
    for i, (text, fit) in enumerate(exprs):
        gen = i // per_gen
        res = Result.failed("diverged", cost=0.5) if math.isnan(fit) else Result(fit, cost=1.0 + i)
        parents = () if gen == 0 else (i - per_gen,)
        expr = parse(text, pset)
        ind = Individual(id=i, expr=expr, generation=gen, operator="init-grow" if gen == 0 else "mutate-point",
                         parent_ids=parents, canonical=str(expr), expr_hash=f"h{text}", fingerprint=f"f{i % 3}",
                         budget=1.0, seed=i, result=res)
        lines.append(individual_to_json(ind))
    (folder / "journal.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def test_cli_exports_the_best_and_a_chosen_individual(tmp_path):
    exprs = [("sin(x)", 40.0), ("blend(x, tan(x))", 55.5), ("log(x)", float("nan")), ("scale(x) + erf(x)", 51.0)]
    write_search(tmp_path / "runs", "s-exp", exprs, options={"clip": 1.1})
    runner = CliRunner()
    res = runner.invoke(main, ["export", "s-exp", "--out", str(tmp_path / "best.py")])
    assert res.exit_code == 0, res.output
    text = (tmp_path / "best.py").read_text()
    assert "EXPRESSION = 'blend(x, tan(x))'" in text and "CLIP = 1.1" in text and "s-exp#1" in text
    assert "beta_0*x + (1 - beta_0)*tan(x)" in res.output
    res = runner.invoke(main, ["export", "s-exp", "--id", "3", "--clip", "2"], catch_exceptions=False)
    assert res.exit_code == 0
    assert "CLIP = 2.0" in Path("activation_3.py").read_text()


def test_cli_errors_are_one_line(tmp_path):
    write_search(tmp_path / "runs", "s-bad", [("x", float("nan"))])
    runner = CliRunner()
    for args, message in ((["export", "s-bad"], "no individual with a fitness"),
                          (["export", "s-bad", "--id", "7"], "no individual 7"),
                          (["export", "nowhere"], "no search")):
        res = runner.invoke(main, args)
        assert res.exit_code == 2 and message in res.output, res.output
    assert json.loads((tmp_path / "runs" / "s-bad" / "search.json").read_text())["search_id"] == "s-bad"


def test_an_out_file_that_cannot_be_written_is_one_line(tmp_path):
    write_search(tmp_path / "runs", "s-out", [("sin(x)", 40.0)])
    (tmp_path / "a-file").write_text("keep me")
    for command in (["export", "s-out"], ["report", "s-out", "--no-mlflow"]):
        for out, reason in (("no-folder/f.txt", "No such file or directory"), ("a-file/f.txt", "Not a directory")):
            res = CliRunner().invoke(main, [*command, "--out", out])
            lines = res.output.strip().splitlines()
            assert res.exit_code == 2 and lines == [f"error: cannot write {out}: {reason}"], (command, res.output)
    assert (tmp_path / "a-file").read_text() == "keep me"
