"""symreg finds the quartic x^4 + x^3 + x^2 + x with population 300 and 40 generations.

The acceptance check of issue 2 asks for at least 18 of 20 seeds
(tests/bench/bench_deap.py measures that, next to DEAP); here six seeds keep
the default suite fast while catching a search that got worse. The check is
a rate, not a list of seeds that must each succeed: which seeds succeed moves
with the last bits of numpy's sin and cos. Seed 3 reached the exact quartic
until a fresh install in session 21 (numpy 2.4.6) gave it a different path,
ending at MSE 1.3e-4, while 19 of seeds 0-19 still succeeded.
"""

import numpy as np

from gpengine.config import SEARCH_KEYS, build_config
from gpengine.search import Search

SEEDS = (0, 4, 7, 11, 15, 19)  # each reached the exact quartic (MSE ~1e-32) with numpy 2.4.6
#: DEAP's example operators (the issue's comparison): arith without exp and log
DEAP_OPS = "primitives=arith:add,sub,mul,div,neg,sin,cos"
QUIET = ["tracking=false"] + (["journal=false"] if "journal" in SEARCH_KEYS else [])


def best_of(seed: int):
    cfg, opts = build_config(
        evaluator="symreg",
        overrides=["population=300", "generations=40", 'target="x**4+x**3+x**2+x"', DEAP_OPS, *QUIET],
        seed=seed,
    )
    with np.errstate(all="ignore"):
        return Search(cfg, opts).run().best


def test_symreg_finds_the_quartic_on_five_seeds_of_six():
    bests = {seed: best_of(seed) for seed in SEEDS}
    for best in bests.values():
        assert best.result.metrics["mse"] == -best.fitness
    missed = {seed: f"{b.expr} has MSE {-b.fitness:.3g}" for seed, b in bests.items() if -b.fitness >= 1e-6}
    assert len(missed) <= 1, f"the quartic was missed on {len(missed)} of {len(SEEDS)} seeds: {missed}"
