"""Compile time of activations that differ only in their constants: constants as a buffer vs as literals.

    python tests/bench/bench_compile_reuse.py [--exprs "x + 0.3722" "x + -0.2551" ...] [--threads 2] [--width 16]

`ExprActivation` keeps an expression's numeric constants in a buffer, so
under torch.compile they are inputs of the captured graph: `x + 0.3722` and
`x + -0.2551` trace to the same graph, and the second is answered by
inductor's on-disk cache. The `literal` variant patches the constants back
into the code (as `torch.full` literals, how they were before), so every new
constant is a new graph and a new compile.

Each variant runs in its own subprocess with its own empty
TORCHINDUCTOR_CACHE_DIR (nothing cached from earlier runs), compiling the
expressions in the order given, as one evaluator worker meets them in a
search (`torch.compiler.reset()` between, as the evaluator does). Printed:
the first training step of each (compile included) and the second one (the
compiled step alone), wall seconds. The variants run one after the other, so
compare their ratios, not absolute seconds, on a noisy machine.

How often a search meets such a variant (`--structure-share`): default tree
GP searches on bnn-cifar (population 20, 15 generations, pre-screen and memo
on) with the training replaced by a cheap stand-in fitness (closeness of the
clipped activation to the clipped identity on a grid, plus noise; real
training would take hours); printed is the share of trained candidates whose
structure (constants blanked) had been trained before in the same search.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

EXPRS = ["x + 0.3722", "x + -0.2551", "sin(1.5 * x) + x", "sin(0.7 * x) + x"]


def use_literal_constants() -> None:
    """Put the constants back into the code as literals (the behaviour before the buffer)."""
    import torch

    from evaluators import torch_expr as T

    init, operand = T.ExprActivation.__init__, T._operand

    def literal_init(self, expr, pset, channels):
        init(self, expr, pset, channels)
        values = self.consts.tolist()
        self._program = [(fn, tuple((s, values[r]) if s == T._CONST else (s, r) for s, r in ops))
                         for fn, ops in self._program]
        if self._out[0] == T._CONST:
            self._out = (T._CONST, values[self._out[1]])

    def literal_operand(op, regs, params, consts):
        if op[0] == T._CONST:
            return torch.full((), op[1], dtype=consts.dtype, device=consts.device)
        return operand(op, regs, params, consts)

    T.ExprActivation.__init__ = literal_init
    T._operand = literal_operand


def worker(variant: str, exprs: list[str], width: int, threads: int) -> None:
    import torch

    sys.path.insert(0, os.path.dirname(__file__))
    from bench_bnn_speed import fast_step_factory

    if variant == "literal":
        use_literal_constants()
    torch.set_num_threads(threads)
    x, y = torch.randn(128, 3, 32, 32), torch.randint(0, 10, (128,))
    for e in exprs:
        torch.compiler.reset()
        t = time.perf_counter()
        step = fast_step_factory(e, width, False, False, compile=True)
        step(x, y)
        first = time.perf_counter() - t
        t = time.perf_counter()
        step(x, y)
        print(json.dumps({"expr": e, "first": first, "next": time.perf_counter() - t}), flush=True)


def structure_share(seeds: list[int], overrides: list[str]) -> None:
    import zlib

    import numpy as np

    from evaluators.bnn_cifar import BnnCifar
    from gpengine.config import build_config
    from gpengine.evaluator import Result
    from gpengine.numeric import evaluate
    from gpengine.search import Search
    from primitives import get_set

    grid, pset = np.linspace(-3, 3, 301), get_set("gaaf")

    def stand_in(self, expr, *, budget=1.0, seed=0):
        with np.errstate(all="ignore"):
            v = np.nan_to_num(np.clip(np.asarray(evaluate(expr, pset, grid), float) * np.ones_like(grid), -1.3, 1.3))
        distance = float(np.mean(np.abs(v - np.clip(grid, -1.3, 1.3))))
        noise = zlib.crc32(f"{expr}|{seed}".encode()) / 2**32
        return Result(fitness=46 - min(10.0, 5 * distance) + 0.5 * noise, cost=1.0)

    BnnCifar.evaluate = stand_in  # in this process only: backend=sequential below
    for seed in seeds:
        cfg, opts = build_config(evaluator="bnn-cifar", seed=seed, overrides=[
            "population=20", "generations=15", "tracking=false", "journal=false", "cache=false",
            "jobs=1", "backend=sequential", "isolate=false", *overrides])
        trained = [i for i in Search(cfg, opts).run().individuals if not i.cached and i.result.status != "rejected"]
        seen: set[tuple] = set()
        again = 0
        for ind in trained:
            # what the compiled graph depends on: the nodes without their values (constants, slot inits)
            structure = tuple((n.kind, n.name, n.arity) for n in ind.expr.nodes)
            again += structure in seen
            seen.add(structure)
        print(f"seed {seed}: {len(trained)} trained, {again} ({100 * again / max(1, len(trained)):.0f}%) "
              f"with a structure trained before", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--exprs", nargs="+", default=EXPRS)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--structure-share", action="store_true", help="how often a search meets a constant variant")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="search keys (--structure-share)")
    ap.add_argument("--worker", choices=["buffer", "literal"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.structure_share:
        structure_share(args.seeds, args.set)
        return
    if args.worker:
        worker(args.worker, args.exprs, args.width, args.threads)
        return
    import torch

    print(f"torch {torch.__version__}, {args.threads} threads, width {args.width}; first training step "
          "(compile included) / next step, wall seconds, empty inductor cache per variant")
    for variant in ("buffer", "literal"):
        with tempfile.TemporaryDirectory(prefix="gpengine-inductor-") as cache:
            env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache}
            cmd = [sys.executable, __file__, "--worker", variant, "--width", str(args.width),
                   "--threads", str(args.threads), "--exprs", *args.exprs]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
        print(f"\n  constants as {variant}{'s' if variant == 'literal' else ''}:")
        for line in out.splitlines():
            if line.startswith("{"):
                r = json.loads(line)
                print(f"    {r['expr']:24s} first step {r['first']:6.1f} s   next {r['next']:.2f} s")


if __name__ == "__main__":
    main()
