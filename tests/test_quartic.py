"""symreg finds the quartic x^4 + x^3 + x^2 + x with population 300 and 40 generations.

The acceptance check of issue 2 asks for at least 18 of 20 seeds
(tests/bench/bench_deap.py measures that, next to DEAP); here a few fixed
seeds keep the default suite fast while catching a search that got worse.
"""

import numpy as np
import pytest

from gpengine.config import SEARCH_KEYS, build_config
from gpengine.search import Search

SEEDS = (3, 15, 19)  # seeds that reach the exact quartic (MSE ~1e-32), not a borderline 1e-7
#: DEAP's example operators (the issue's comparison): arith without exp and log
DEAP_OPS = "primitives=arith:add,sub,mul,div,neg,sin,cos"
QUIET = ["tracking=false"] + (["journal=false"] if "journal" in SEARCH_KEYS else [])


@pytest.mark.parametrize("seed", SEEDS)
def test_symreg_finds_the_quartic(seed):
    cfg, opts = build_config(
        evaluator="symreg",
        overrides=["population=300", "generations=40", 'target="x**4+x**3+x**2+x"', DEAP_OPS, *QUIET],
        seed=seed,
    )
    with np.errstate(all="ignore"):
        out = Search(cfg, opts).run()
    mse = -out.best.fitness
    assert mse < 1e-6, f"seed {seed}: best {out.best.expr} has MSE {mse:.3g}"
    assert out.best.result.metrics["mse"] == pytest.approx(mse)
