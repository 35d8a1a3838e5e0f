"""Templates of a new evaluator plugin package, for `gpengine new-evaluator NAME [DIR]`.

The scaffold is a working plugin, not a stub: a tiny numpy evaluator (fit a
target curve on a grid, budget = fraction of the points) that passes the
contract suite out of the box, so an author starts from green tests and
changes one method. Kept as strings in a module rather than package data so
nothing extra has to be shipped or located at run time.

Layout written (for NAME ``my-eval``)::

    gpengine-my-eval/
      pyproject.toml                 entry point  my-eval = "gpengine_my_eval:MyEval"
      README.md
      gpengine_my_eval/__init__.py
      gpengine_my_eval/evaluator.py  the Evaluator subclass
      tests/test_my_eval.py          contract suite + a behaviour test
"""

from __future__ import annotations

import ast
import keyword
import re
from functools import cache
from pathlib import Path
from string import Template

from gpengine.errors import ConfigError, GpengineError

NAME_RE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")

PYPROJECT = """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "$dist"
version = "0.1.0"
description = "A gpengine evaluator plugin: $name"
requires-python = ">=3.11"
dependencies = ["gpengine", "numpy", "attrs"]

[project.optional-dependencies]
test = ["pytest"]

# The engine finds evaluators only through this entry-point group.
[project.entry-points."gpengine.evaluators"]
$name = "$package:$cls"

[tool.setuptools.packages.find]
include = ["$package*"]
"""

README = """\
# $dist

A [gpengine](https://pypi.org/project/gpengine/) evaluator plugin, `$name`.

    pip install -e ".[test]"                # the plugin, and pytest for its tests
    gpengine evaluators                     # lists $name
    gpengine check-evaluator $name          # the contract checks
    gpengine run --evaluator $name --set population=20 --set generations=5
    python -m pytest -q tests

Edit `$package/evaluator.py`: the options in `Options`, the fitness in `evaluate`.
"""

INIT = """\
\"\"\"gpengine evaluator plugin `$name`.\"\"\"

from $package.evaluator import $cls

__all__ = ["$cls"]
"""

EVALUATOR = '''\
"""`$name`: fitness = how well the expression fits a target curve (a template to edit).

The engine builds the class from keyword options (`--set key=value` on the
command line, or the [evaluator] table of a config file), validated by the
attrs class `Options`; an unknown key or a bad value stops the search with one
line. Then it calls `evaluate(expr, budget=..., seed=...)` in worker
processes; higher fitness is better.
"""

from __future__ import annotations

import time

import attrs
import numpy as np
from attrs import validators as v

from gpengine.errors import ConfigError
from gpengine.evaluator import DatasetInfo, Evaluator, Result
from gpengine.expr import Expr
from gpengine.numeric import evaluate as evaluate_numpy

TARGETS = {"tanh": np.tanh, "softsign": lambda x: x / (1 + np.abs(x)), "swish": lambda x: x / (1 + np.exp(-x))}


def _number(inst, attribute, value):  # True is an int to Python, not a number to a user typing --set low=true
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{attribute.name} must be a number (got {value!r})")


def _target(inst, attribute, value):
    if value not in TARGETS:
        raise ConfigError(f"target must be one of {', '.join(TARGETS)} (got {value!r})")


class $cls(Evaluator):
    # shown by `gpengine evaluators`
    description = "fit a target curve on a grid (template plugin); fitness = -mean squared error"
    # operators searched by default (`gpengine primitives` lists the sets); the search
    # passes the set it actually uses as `primitives`, available here as self.pset
    primitive_set = "arith"
    # what a budget below 1 buys: here, a seeded subsample of the grid
    fidelity_unit = "fraction of the grid points"
    min_budget = 0.25
    # bump when fitness values change for the same options: keys cached results
    version = "1"

    @attrs.define(kw_only=True)
    class Options:
        target: str = attrs.field(default="tanh", validator=_target)
        points: int = attrs.field(default=64, validator=[v.not_(v.instance_of(bool)), v.instance_of(int), v.ge(8)])
        low: float = attrs.field(default=-3.0, validator=_number)
        high: float = attrs.field(default=3.0, validator=_number)

    def __init__(self, **options):
        super().__init__(**options)  # validates the options: self.options, self.primitives, self.pset
        o = self.options
        if not o.low < o.high:
            raise ConfigError(f"low ({o.low}) must be smaller than high ({o.high})")
        self.x = np.linspace(o.low, o.high, o.points)
        self.y = TARGETS[o.target](self.x)

    def dataset(self) -> DatasetInfo:
        return DatasetInfo(name=f"$name:{self.options.target}", digest=f"{self.options.points}", n_train=len(self.x))

    def evaluate(self, expr: Expr, *, budget: float = 1.0, seed: int = 0) -> Result:
        """Never raises for a bad candidate: failures come back as Result.failed(reason)."""
        t0 = time.perf_counter()
        rng = np.random.default_rng(seed)  # everything random comes from the seed: same seed, same fitness
        n = max(8, round(len(self.x) * budget))
        idx = np.sort(rng.choice(len(self.x), size=min(n, len(self.x)), replace=False))
        try:
            pred = evaluate_numpy(expr, self.pset, self.x[idx])
        except Exception as exc:  # a candidate the numpy forms cannot compute
            return Result.failed(f"{type(exc).__name__}: {exc}", cost=time.perf_counter() - t0)
        if not np.all(np.isfinite(pred)):
            return Result.failed("non-finite prediction", cost=time.perf_counter() - t0)
        mse = float(np.mean((pred - self.y[idx]) ** 2))
        return Result(-mse, metrics={"mse": mse, "points": len(idx)}, cost=time.perf_counter() - t0)
'''

TEST = '''\
"""Tests of the `$name` plugin: the engine's contract suite, then its own behaviour."""

import math

from gpengine.contract import check_evaluator
from gpengine.expr_text import parse
from $package import $cls


def test_honours_the_gpengine_contract():
    check_evaluator("$name")  # through the installed entry point
    check_evaluator($cls, {"points": 16, "target": "softsign"})  # the class itself, other options


def test_a_good_expression_scores_higher_than_a_bad_one():
    ev = $cls()
    good = ev.evaluate(parse("x / (1.0 + x * x)", ev.pset), budget=1.0, seed=0)
    bad = ev.evaluate(parse("x * x", ev.pset), budget=1.0, seed=0)
    assert good.ok and bad.ok and good.fitness > bad.fitness and not math.isnan(good.fitness)
'''


@cache
def template_names() -> dict[str, str]:
    """Every name the generated modules import, define or use, with what it is there (for the message).

    A class of the same name would shadow it: `result` made `class Result(Evaluator)`, and
    `Result(-mse, ...)` in its evaluate() then built the evaluator (a TypeError in the package's
    own tests). Read from the templates themselves, so a name added to them is covered too."""
    placeholder = "ScaffoldPlaceholderClass"
    names: dict[str, str] = {}
    for text in (INIT, EVALUATOR, TEST):
        source = Template(text).substitute(name="x", dist="x", package="x", cls=placeholder, snake="x")
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    names.setdefault(alias.asname or alias.name, f"which the generated code imports from {node.module}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    names.setdefault(alias.asname or alias.name.split(".")[0], "which the generated code imports")
            elif isinstance(node, ast.Name):  # a builtin used (Exception) or a module-level name
                names.setdefault(node.id, "which the generated code uses")
        for node in tree.body:  # nested ones (the class's Options) share no scope with the class name
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names.setdefault(node.name, "which the generated code defines")
    names.pop(placeholder, None)
    return names


def names_for(name: str) -> dict[str, str]:
    """Distribution, package and class names derived from the entry-point name."""
    if not NAME_RE.match(name):
        raise ConfigError(f"evaluator name {name!r}: use lower-case letters, digits and single dashes, e.g. my-eval")
    snake = name.replace("-", "_")
    cls = "".join(part.capitalize() for part in name.split("-"))
    clash = "which is a Python keyword" if keyword.iskeyword(cls) else template_names().get(cls)  # `none`: class None
    if clash:
        raise ConfigError(f"evaluator name {name!r} would name its class {cls!r}, {clash}; "
                          f"choose another name, e.g. {name}-eval")
    return {"name": name, "dist": f"gpengine-{name}", "package": f"gpengine_{snake}", "cls": cls, "snake": snake}


def scaffold(name: str, directory: str | Path | None = None) -> list[Path]:
    """Write the plugin package; refuses to write into a folder that has files."""
    n = names_for(name)
    from gpengine.plugins import evaluator_names

    installed = evaluator_names()
    if name in installed:  # two entry points of one name: one of them is silently never used
        raise ConfigError(f"evaluator name {name!r} is taken by an installed evaluator "
                          f"(installed: {', '.join(installed)}); choose another name")
    root = Path(directory) if directory is not None else Path(n["dist"])
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise GpengineError(f"{root} already exists and is not empty; choose another DIR")
    files = {
        "pyproject.toml": PYPROJECT,
        "README.md": README,
        f"{n['package']}/__init__.py": INIT,
        f"{n['package']}/evaluator.py": EVALUATOR,
        f"tests/test_{n['snake']}.py": TEST,
    }
    written = []
    for rel, text in files.items():
        path = root / rel
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(Template(text).substitute(n), encoding="utf-8")
        except OSError as exc:  # a read-only or missing mount, no permission
            raise GpengineError(f"cannot write {path}: {exc.strerror or exc}; choose another DIR") from None
        written.append(path)
    return written
