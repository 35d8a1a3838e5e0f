"""One evaluated member of a search, with its lineage."""

from __future__ import annotations

import math

import attrs

from gpengine.evaluator import Result
from gpengine.expr import Expr


@attrs.frozen
class Individual:
    """An expression, where it came from, and what it scored.

    `id` is unique within a search and increases in creation order.
    `operator` names what made it: the first population's "init-<init>"
    ("init-ramped", "init-grow", "init-full", "init-gaaf3", "init-gaaf6"),
    "init-guess" and "init-primitive"; then "crossover", "mutate-point",
    "mutate-subtree", "mutate-hoist", "mutate-shrink", "mutate-constant",
    "mutate-snap", GAAF's "mutate-gene", "random", "reeval" (a noise
    re-evaluation), "promote" (a successive-halving promotion).
    `cached` is true when the result came from the cache or from an identical
    behaviour fingerprint evaluated earlier (no compute spent).
    """

    id: int
    expr: Expr
    generation: int
    operator: str
    parent_ids: tuple[int, ...] = attrs.field(converter=tuple, default=())
    canonical: str = ""  # canonical form as text
    expr_hash: str = ""  # structural hash of the canonical form
    fingerprint: str = ""  # behaviour fingerprint
    budget: float = 1.0
    seed: int = 0
    result: Result = attrs.field(factory=lambda: Result.failed("not evaluated"))
    cached: bool = False
    # read by every tournament and sort, so worked out once (attrs.evolve builds anew)
    _fitness: float = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_fitness", self.result.fitness if self.result.ok else -math.inf)

    @property
    def fitness(self) -> float:
        """Fitness for selection: -inf for anything that did not produce a measurement."""
        return self._fitness

    @property
    def size(self) -> int:
        return self.expr.size

    @property
    def depth(self) -> int:
        return self.expr.depth

    @property
    def status(self) -> str:
        return self.result.status
