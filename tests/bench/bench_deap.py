"""gpengine's `symreg` against DEAP's GP symbolic-regression example, side by side.

    python tests/bench/bench_deap.py [--seeds 20] [--quick]

Both engines run in this process, one after the other for every seed, on the
same target x^4 + x^3 + x^2 + x, with population 300 and 40 generations.

DEAP is set up as in its example `examples/gp/symbreg.py` (DEAP 1.4): primitives
add, sub, mul, protected div (1 on ZeroDivisionError), neg, cos, sin and an
ephemeral integer constant in {-1, 0, 1}; ramped half-and-half init of depth
1-2; tournament of 3; one-point crossover; uniform mutation with a full tree of
depth 0-2; a static height limit of 17 on both; `eaSimple` with crossover 0.5
and mutation 0.1; fitness the mean squared error, computed point by point with
`math` as the example does. The only addition: an `OverflowError` (a float
squared past 1e308, possible with protected division by tiny numbers) scores
+inf instead of stopping the run. No statistics are collected (they are not
part of the search).

gpengine runs `symreg` with the example's operators
(`primitives=arith:add,sub,mul,div,neg,sin,cos`; arith's constants: half of them
-1, 0 or 1, the rest uniform in [-1, 1]), its own variation operators and
limits, and the same population, generations and points, with MLflow tracking
and the on-disk journal off (DEAP records nothing either). The rate table also
shows gpengine with `dedup=fingerprint` (duplicates found by behaviour, what
expensive evaluators use), against symreg's default `dedup=canonical`.

Reported:

* success: best MSE < 1e-6 on the example's 20 points x/10, x = -10..9
  (gpengine's `points=20` gives the same grid), over `--seeds` seeds;
* evaluations per second of search wall time at 200 and 10,000 points
  (evenly spaced in [-1, 1) for both). "evals" counts fitness computations
  actually run: DEAP's `nevals` (individuals with an invalid fitness), and
  gpengine's evaluations after its duplicate detection. "individuals" counts
  every individual given a fitness (DEAP: population x (generations + 1);
  gpengine: every proposal, duplicates answered from memory included).

At 10,000 points DEAP needs seconds per generation, so that measurement runs
fewer generations (`--big-generations`, default 10) for both engines.
"""

from __future__ import annotations

import argparse
import math
import operator
import os
import platform
import random
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from deap import algorithms, base, creator, gp, tools  # noqa: E402

from gpengine.config import SEARCH_KEYS, build_config  # noqa: E402
from gpengine.memo import clear_all  # noqa: E402
from gpengine.search import Search  # noqa: E402

DEAP_OPS = "primitives=arith:add,sub,mul,div,neg,sin,cos"  # the example's operator set
POPULATION = 300
GENERATIONS = 40
SUCCESS_MSE = 1e-6


def quartic(x: float) -> float:
    return x**4 + x**3 + x**2 + x


def grid(n: int) -> list[float]:
    """`n` points evenly spaced in [-1, 1): the example's x/10 grid when n = 20."""
    return [-1.0 + 2.0 * i / n for i in range(n)]


# -- DEAP ----------------------------------------------------------------------------------


def _safe_div(a: float, b: float) -> float:
    try:
        return a / b
    except ZeroDivisionError:
        return 1.0


def _unit_int() -> int:
    return random.randint(-1, 1)


def _deap_pset() -> gp.PrimitiveSet:
    pset = gp.PrimitiveSet("MAIN", 1)
    for fn, arity in ((operator.add, 2), (operator.sub, 2), (operator.mul, 2), (_safe_div, 2),
                      (operator.neg, 1), (math.cos, 1), (math.sin, 1)):
        pset.addPrimitive(fn, arity)
    with warnings.catch_warnings():  # re-adding the constant in one process warns
        warnings.simplefilter("ignore")
        pset.addEphemeralConstant("unit_int", _unit_int)
    pset.renameArguments(ARG0="x")
    return pset


_PSET = _deap_pset()
if not hasattr(creator, "BenchMinFitness"):
    creator.create("BenchMinFitness", base.Fitness, weights=(-1.0,))
    creator.create("BenchTree", gp.PrimitiveTree, fitness=creator.BenchMinFitness)


def _deap_toolbox(points: list[float]) -> base.Toolbox:
    targets = [quartic(x) for x in points]
    tb = base.Toolbox()
    tb.register("expr", gp.genHalfAndHalf, pset=_PSET, min_=1, max_=2)
    tb.register("individual", tools.initIterate, creator.BenchTree, tb.expr)
    tb.register("population", tools.initRepeat, list, tb.individual)
    tb.register("compile", gp.compile, pset=_PSET)

    def mse(tree):
        fn = tb.compile(expr=tree)
        try:
            err = math.fsum((fn(x) - y) ** 2 for x, y in zip(points, targets))
        except (OverflowError, ValueError):
            return (math.inf,)
        return (err / len(points),)

    tb.register("evaluate", mse)
    tb.register("select", tools.selTournament, tournsize=3)
    tb.register("mate", gp.cxOnePoint)
    tb.register("expr_mut", gp.genFull, min_=0, max_=2)
    tb.register("mutate", gp.mutUniform, expr=tb.expr_mut, pset=_PSET)
    height = operator.attrgetter("height")
    tb.decorate("mate", gp.staticLimit(key=height, max_value=17))
    tb.decorate("mutate", gp.staticLimit(key=height, max_value=17))
    return tb


def run_deap(seed: int, points: list[float], generations: int) -> dict:
    random.seed(seed)
    tb = _deap_toolbox(points)
    start = time.perf_counter()
    pop = tb.population(n=POPULATION)
    hof = tools.HallOfFame(1)
    _, log = algorithms.eaSimple(pop, tb, cxpb=0.5, mutpb=0.1, ngen=generations, halloffame=hof, verbose=False)
    seconds = time.perf_counter() - start
    return {
        "mse": hof[0].fitness.values[0],
        "evals": sum(log.select("nevals")),
        "individuals": POPULATION * (generations + 1),
        "seconds": seconds,
        "best": str(hof[0]),
    }


# -- gpengine ------------------------------------------------------------------------------


def run_gpengine(seed: int, n_points: int, generations: int, extra: tuple[str, ...] = ()) -> dict:
    # no MLflow tracking and no journal on disk: DEAP records nothing either
    quiet = ["tracking=false"] + (["journal=false"] if "journal" in SEARCH_KEYS else [])
    cfg, opts = build_config(
        evaluator="symreg",
        overrides=[f"population={POPULATION}", f"generations={generations}", *quiet,
                   f"points={n_points}", 'target="x**4+x**3+x**2+x"', DEAP_OPS, *extra],
        seed=seed,
    )
    clear_all()  # start cold, as a search in its own process does (memos are per process)
    search = Search(cfg, opts)
    start = time.perf_counter()
    with np.errstate(all="ignore"):
        out = search.run()
    seconds = time.perf_counter() - start
    return {
        "mse": -out.best.fitness,
        "evals": out.history[-1].evaluations,
        "individuals": len(out.individuals),
        "seconds": seconds,
        "best": str(out.best.expr),
    }


# -- report --------------------------------------------------------------------------------


def success(seeds: list[int]) -> dict[str, list[dict]]:
    pts = grid(20)
    out: dict[str, list[dict]] = {"deap": [], "gpengine": []}
    for seed in seeds:
        d = run_deap(seed, pts, GENERATIONS)
        g = run_gpengine(seed, 20, GENERATIONS)
        out["deap"].append(d)
        out["gpengine"].append(g)
        print(f"  seed {seed:2d}  DEAP mse {d['mse']:.3g} ({d['seconds']:.1f} s)   "
              f"gpengine mse {g['mse']:.3g} ({g['seconds']:.1f} s)", flush=True)
    return out


#: gpengine variants in the rate table: symreg's defaults (dedup by canonical form), and
#: dedup by behaviour fingerprint (what expensive evaluators use: for one as cheap as
#: symreg the fingerprint costs more than the evaluation it saves)
VARIANTS = {"gpengine": (), "gpengine-fprint": ("dedup=fingerprint",)}


def rates(n_points: int, seeds: list[int], generations: int) -> dict[str, dict[str, float]]:
    """Totals over `seeds`, the engines alternating so machine load hits all alike."""
    names = ["deap", *VARIANTS]
    totals = {name: {"evals": 0, "individuals": 0, "seconds": 0.0} for name in names}
    pts = grid(n_points)
    for seed in seeds:
        for name in names:
            if name == "deap":
                result = run_deap(seed, pts, generations)
            else:
                result = run_gpengine(seed, n_points, generations, VARIANTS[name])
            for key in totals[name]:
                totals[name][key] += result[key]
            print(f"  {n_points} points, seed {seed}: {name:14s} {result['evals']:6d} evals "
                  f"{result['individuals']:6d} individuals in {result['seconds']:.2f} s", flush=True)
    return totals


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=20, help="seeds for the success rate (default 20)")
    ap.add_argument("--rate-seeds", type=int, default=3, help="seeds per evaluations-per-second figure (default 3)")
    ap.add_argument("--big-generations", type=int, default=10,
                    help="generations of the 10,000-point rate runs (default 10)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 3 success seeds, 1 rate seed, 3 generations at 10,000 points")
    args = ap.parse_args(argv)
    if args.quick:
        args.seeds, args.rate_seeds, args.big_generations = 3, 1, 3

    print(f"python {platform.python_version()}, numpy {np.__version__}, deap {getattr(sys.modules['deap'], '__version__', '?')}, "
          f"{os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}")
    print(f"\nsuccess (MSE < {SUCCESS_MSE:g} on 20 points), population {POPULATION}, {GENERATIONS} generations:")
    s = success(list(range(args.seeds)))
    summary = {}
    for name, runs in s.items():
        solved = sum(r["mse"] < SUCCESS_MSE for r in runs)
        summary[name] = solved
        print(f"  {name:8s} solved {solved}/{len(runs)}; median wall {statistics.median(r['seconds'] for r in runs):.2f} s")

    print("\nevaluations per second of search wall time:")
    table = []
    for n_points, gens in ((200, GENERATIONS), (10_000, args.big_generations)):
        t = rates(n_points, list(range(args.rate_seeds)), gens)
        row = {name: (v["evals"] / v["seconds"], v["individuals"] / v["seconds"]) for name, v in t.items()}
        table.append((n_points, gens, row))
    print(f"\n{'points':>7} {'gens':>5} {'engine':>14} {'evals/s':>9} {'indiv/s':>9} {'vs DEAP':>8}")
    for n_points, gens, row in table:
        for name, (ev, ind) in row.items():
            ratio = ev / row["deap"][0]
            print(f"{n_points:>7} {gens:>5} {name:>14} {ev:>9.0f} {ind:>9.0f} {ratio:>7.2f}x")
    print(f"\nsuccess: DEAP {summary['deap']}/{args.seeds}, gpengine {summary['gpengine']}/{args.seeds}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
