"""What the pre-screen and the memo make of GAAF's whole 3-gene search space, before any training.

Every genome B(U1(x), U2(x)) of the gaaf primitive set (22 unary x 22 unary x 11 binary = 5,324):
how many the pre-screen turns away, for which reason, and how many distinct behaviour fingerprints
the rest have, that is how many trainings cover the space with the in-search memo on. Reruns in a
few seconds; a change to the pre-screen or the fingerprint shows here first.

    python tests/bench/bench_gaaf_space.py
"""

from __future__ import annotations

import collections
import time

from gpengine.canonical import canonicalize
from gpengine.fingerprint import fingerprint
from gpengine.init import from_genes
from gpengine.numeric import param_sites
from gpengine.prescreen import prescreen
from primitives import get_set


def main() -> None:
    pset = get_set("gaaf")
    unary = [p.name for p in pset.with_arity(1)]
    binary = [p.name for p in pset.with_arity(2)]
    t0 = time.perf_counter()
    reasons: collections.Counter[str] = collections.Counter()
    passing, with_params = [], 0
    for b in binary:
        for u1 in unary:
            for u2 in unary:
                expr = canonicalize(from_genes(pset, (u1, u2, b)), pset)  # slot order GENES_3
                reason = prescreen(expr, pset)
                reasons[reason or "passed"] += 1
                if reason is None:
                    passing.append(expr)
                    with_params += bool(param_sites(expr, pset))
    behaviours = {fingerprint(e, pset) for e in passing}
    n = sum(reasons.values())
    print(f"{n} genomes ({len(binary)} binary x {len(unary)} x {len(unary)} unary), {time.perf_counter() - t0:.1f} s")
    for reason, count in reasons.most_common():
        print(f"  {reason:24s} {count:5d}  {100 * count / n:5.1f}%")
    print(f"passing: {len(passing)} ({with_params} with learnable parameters), "
          f"{len(behaviours)} distinct behaviours: {len(behaviours)} trainings cover the space")


if __name__ == "__main__":
    main()
