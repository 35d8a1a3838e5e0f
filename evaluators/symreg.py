"""`symreg`: symbolic regression of a 1-D target, vectorised numpy.

The target comes from a formula (`--set target="x**4+x**3+x**2+x"`, read by
the safe parser over every numpy primitive plus `**`) sampled on `points`
evenly spaced points in [low, high], or from a CSV file with columns x,y
(`--set data=path.csv`). Fitness is higher-is-better: negative mean squared
error by default, or R^2 (`--set metric=r2`). A candidate whose prediction is
not finite everywhere fails with that reason.
"""

from __future__ import annotations

import csv
import hashlib
import math
import time
from pathlib import Path

import attrs
import numpy as np

from gpengine.errors import ConfigError, DataError, GpengineError
from gpengine.evaluator import DatasetInfo, Evaluator, Result
from gpengine.expr import Expr
from gpengine.expr_text import parse
from gpengine.numeric import evaluate as evaluate_numpy
from primitives import formula_set

METRICS = ("neg_mse", "r2")


def _metric(inst, attribute, value):
    if value not in METRICS:
        raise ConfigError(f"metric must be one of {', '.join(METRICS)} (got {value!r})")


def _positive_int(inst, attribute, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 2:
        raise ConfigError(f"{attribute.name} must be an integer >= 2 (got {value!r})")


def _number(inst, attribute, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{attribute.name} must be a finite number (got {value!r})")


def read_xy_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Columns x and y (a header row is optional); clear errors for anything else."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"symreg data file not found: {p}")
    xs, ys = [], []
    with p.open(newline="") as fh:
        for lineno, row in enumerate(csv.reader(fh), start=1):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) < 2:
                raise DataError(f"{p}:{lineno}: expected two columns x,y")
            try:
                xs.append(float(row[0]))
                ys.append(float(row[1]))
            except ValueError:
                if lineno == 1:
                    continue  # header
                raise DataError(f"{p}:{lineno}: not a number in {row[:2]}") from None
            if not (math.isfinite(xs[-1]) and math.isfinite(ys[-1])):  # one nan row fails every candidate
                raise DataError(f"{p}:{lineno}: not a finite number in {row[:2]}")
    if len(xs) < 2:
        raise DataError(f"{p}: needs at least two rows of x,y")
    return np.asarray(xs), np.asarray(ys)


class SymbolicRegression(Evaluator):
    description = "symbolic regression of a 1-D target (formula or CSV); fitness = -MSE or R^2"
    primitive_set = "arith"
    fidelity_unit = "full evaluation (budget ignored)"
    min_budget = 1.0
    version = "1"
    # A fitness costs less than a behaviour fingerprint: dedup by canonical form.
    dedup = "canonical"

    @attrs.define(kw_only=True)
    class Options:
        target: str = "x**4+x**3+x**2+x"
        data: str | None = None
        points: int = attrs.field(default=20, validator=_positive_int)
        low: float = attrs.field(default=-1.0, validator=_number)
        high: float = attrs.field(default=1.0, validator=_number)
        metric: str = attrs.field(default="neg_mse", validator=_metric)

    def __init__(self, **options):
        super().__init__(**options)
        o = self.options
        if o.data:
            self.x, self.y = read_xy_csv(o.data)
            source = str(o.data)
        else:
            if not o.low < o.high:
                raise ConfigError(f"low ({o.low}) must be smaller than high ({o.high})")
            try:
                target = parse(str(o.target), formula_set())
            except GpengineError as exc:
                raise ConfigError(f"target: {exc}") from None
            # Sample like DEAP's example: points evenly spaced over [low, high).
            self.x = o.low + (o.high - o.low) * np.arange(o.points) / o.points
            self.y = evaluate_numpy(target, formula_set(), self.x)
            if not np.all(np.isfinite(self.y)):
                raise ConfigError(f"target {o.target!r} is not finite on [{o.low}, {o.high}]")
            source = f"formula:{o.target}"
        self._var = float(np.var(self.y)) or 1.0
        self._source = source

    def dataset(self) -> DatasetInfo:
        digest = hashlib.blake2b(np.stack([self.x, self.y]).tobytes(), digest_size=8).hexdigest()
        return DatasetInfo(name="symreg", digest=digest, source=self._source, n_train=len(self.x))

    def evaluate(self, expr: Expr, *, budget: float = 1.0, seed: int = 0) -> Result:
        start = time.perf_counter()  # the cost, measured here: cheaper than the engine's copy of the Result
        pred = evaluate_numpy(expr, self.pset, self.x)
        if not np.all(np.isfinite(pred)):
            return Result.failed("non-finite prediction")
        with np.errstate(over="ignore", invalid="ignore"):  # a huge prediction is just a bad one
            err = pred - self.y
            mse = float(err @ err) / len(err)  # a dot product: np.mean's Python layers cost more here
        if not math.isfinite(mse):
            return Result.failed("non-finite error")
        r2 = 1.0 - mse / self._var
        fitness = -mse if self.options.metric == "neg_mse" else r2
        return Result(fitness, metrics={"mse": mse, "r2": r2}, cost=time.perf_counter() - start)
