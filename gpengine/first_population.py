"""The first population (generation 0): what is drawn, how, and which draws are bred from.

A search draws the user's guesses first (`guesses`, parsed and checked when the
search is built), then, with `init_primitives`, every primitive of the set applied
to x once (f(x), g(x, x); in an order drawn from the search's generator), then
random expressions of the configured initialisation
(`init`: ramped half-and-half, grow, full, GAAF's 3- or 6-gene templates;
strategy gaaf: genomes never drawn before). Draws go on, a bounded number of
rounds, until enough of them would pass the pre-screen. A candidate that is not
worth breeding from (a pre-screen reject; GAAF: not admitted) is recorded but
replaced by more draws, for a few rounds (gaaf_ga.FILL_ROUNDS); the population
is then completed from everything drawn.

The generational loop builds it with `build`; the asynchronous one
(gpengine.steady_async) integrates the same draws one at a time. Both go through
the Search's strategy interface, so every draw comes from the search's generator
in the same order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Collection

import numpy as np

from gpengine import gaaf_ga, selection
from gpengine import init as initialisation
from gpengine.config import SearchConfig
from gpengine.errors import ConfigError, ParseError
from gpengine.evaluator import REJECTED
from gpengine.expr import Expr
from gpengine.expr_text import parse
from gpengine.individual import Individual
from gpengine.variation import Limits

if TYPE_CHECKING:
    from gpengine.executor import Executor
    from gpengine.search import Search

#: rounds of fresh draws for a first population of candidates that pass the pre-screen
PRESCREEN_DRAWS = 50


def parse_guesses(config: SearchConfig, pset: Any, limits: Limits) -> tuple[Expr, ...]:
    """The configured guesses as expressions; a ConfigError names the first that is not one of
    the set, has no GAAF gene shape (strategy gaaf), or is past the size limits."""
    out = []
    for text in config.guesses:
        try:
            expr = parse(text, pset)
        except ParseError as exc:
            raise ConfigError(f"guesses: {text!r} is not an expression of the {pset.name} set: {exc}") from None
        if config.strategy == "gaaf" and initialisation.to_genes(expr) is None:
            raise ConfigError(f"guesses: {text!r} has no GAAF gene shape; strategy 'gaaf' takes 3- or 6-gene "
                              "expressions such as blend(sin(x), square(x))")
        if not limits.admits(expr):
            raise ConfigError(f"guesses: {text!r} has size {expr.size} and depth {expr.depth}, beyond max_size "
                              f"{config.max_size} or max_depth {config.max_depth}")
        out.append(expr)
    return tuple(out)


def primitive_trees(pset: Any, limits: Limits) -> list[Expr]:
    """Every primitive of the set applied to x alone (sin(x), gate(x, x)), in the set's order;
    those past the size limits left out.

    Why: a random first population may never hold a primitive on its own, and a primitive
    that is good alone (a learnable threshold for a BNN's sign) may then be found late or
    never; one tree each measures every building block once, and the pre-screen turns away
    the degenerate ones (a constant, a sign that never changes) before any training."""
    x = Expr.x()
    trees = [Expr.apply(p.name, *([x] * p.arity)) for p in pset]
    return [t for t in trees if limits.admits(t)]


class Initialiser:
    """Draws a search's first expressions: its guesses not yet proposed, then (`init_primitives`)
    each primitive alone, then random ones.

    `seen`, in the calls that take it: the GAAF genomes the search proposed so far (strategy
    gaaf never draws one twice, a guessed one included); it is updated in place."""

    def __init__(self, config: SearchConfig, pset: Any, limits: Limits):
        initialisation.check_limits(config.init, config.strategy, config.init_min_depth, config.init_max_depth,
                                    config.max_depth, config.max_size, pset)  # the set's arities known now
        self.config = config
        self.pset = pset
        self.guesses = parse_guesses(config, pset, limits)
        self._queue = list(self.guesses)  # the first population's first draw takes them
        # the primitives on their own, shuffled at the first draw (the generator is the search's)
        self._primitives = primitive_trees(pset, limits) if config.init_primitives else []
        self._primitive_ops = frozenset(self._primitives)  # what operator() calls init-primitive

    def skip_guesses(self) -> None:
        """Generation 0 is done (a restored search): its guesses and primitives were proposed then."""
        self._queue = []
        self._primitives = []

    def operator(self, expr: Expr | None = None) -> str:
        """The operator a first-population record carries: init-guess, init-primitive, init-gaaf3/6,
        init-<init>."""
        if expr is not None and expr in self.guesses:
            return "init-guess"
        if expr is not None and expr in self._primitive_ops:
            return "init-primitive"
        if self.config.strategy == "gaaf":
            return f"init-gaaf{gaaf_ga.n_genes(self.config.init)}"
        return f"init-{self.config.init}"

    def random(self, rng: np.random.Generator, n: int, seen: set[tuple[str, ...]],
               exclude: Collection[Expr] = ()) -> list[Expr]:
        """n random expressions of the configured initialisation (strategy random breeds these too),
        none in `exclude` where the set allows (trees of the tree-GP inits are redrawn)."""
        cfg = self.config
        if n <= 0:
            return []
        if cfg.strategy == "gaaf":
            return gaaf_ga.fresh_genomes(rng, self.pset, n, gaaf_ga.n_genes(cfg.init), seen)
        if cfg.init == "ramped":
            return initialisation.ramped_half_and_half(
                rng, self.pset, n, min_depth=cfg.init_min_depth, max_depth=cfg.init_max_depth, p_const=cfg.p_const,
                max_size=cfg.max_size, exclude=exclude,
            )
        if cfg.init == "grow":
            def one() -> Expr:
                return initialisation.grow(rng, self.pset, cfg.init_max_depth, min_depth=cfg.init_min_depth,
                                           p_const=cfg.p_const, max_size=cfg.max_size)
        elif cfg.init == "full":
            def one() -> Expr:
                return initialisation.full(rng, self.pset, cfg.init_max_depth, p_const=cfg.p_const,
                                           max_size=cfg.max_size)
        elif cfg.init == "gaaf3":  # a gene shape is never one primitive alone: nothing to exclude
            return [initialisation.gaaf_3gene(rng, self.pset) for _ in range(n)]
        else:
            return [initialisation.gaaf_6gene(rng, self.pset) for _ in range(n)]
        return [initialisation.other_than(one, exclude) for _ in range(n)]

    def draw(self, rng: np.random.Generator, n: int, seen: set[tuple[str, ...]]) -> list[Expr]:
        """n expressions for the first population: the guesses not yet proposed, then the
        primitives on their own (`init_primitives`), then random ones."""
        if self._primitives:
            order = rng.permutation(len(self._primitives))
            self._queue += [self._primitives[i] for i in order if self._primitives[i] not in self._queue]
            self._primitives = []
        guessed, self._queue = self._queue[:n], self._queue[n:]
        if self.config.strategy == "gaaf":  # GAAF never draws a genome twice: not a guessed one either
            seen.update(initialisation.to_genes(e) for e in guessed)
        # a primitive alone is proposed once: a random draw is another tree
        return guessed + self.random(rng, n - len(guessed), seen, exclude=self._primitive_ops)

    def passing(self, rng: np.random.Generator, n: int, seen: set[tuple[str, ...]],
                rejects: Callable[[Expr], bool]) -> list[Expr]:
        """Fresh first-population expressions, drawn until `n` of them would pass the pre-screen
        (`rejects`; bounded). The rejects are kept in the list: evaluating them costs nothing and
        records every draw, and a round then trains `n` candidates, not a few."""
        exprs: list[Expr] = []
        passing = 0
        for _ in range(PRESCREEN_DRAWS):
            fresh = self.draw(rng, n - passing, seen)
            exprs += fresh
            passing += sum(not rejects(e) for e in fresh)
            if passing >= n or not fresh:
                break
        return exprs


def qualifies(ind: Individual, config: SearchConfig, evaluator: Any) -> bool:
    """Whether a first-population candidate is worth breeding from. GAAF: only admitted
    candidates. Tree GP: none the pre-screen rejected (constant, non-finite...): they cost
    nothing, and a population of rejects would breed from nothing."""
    if config.strategy == "gaaf":
        return gaaf_ga.admitted(ind, config.admission, evaluator)
    return ind.status != REJECTED


def complete(pop: list[Individual], drawn: list[Individual], config: SearchConfig,
             qualified: Callable[[Individual], bool]) -> list[Individual]:
    """The first population from the qualified candidates `pop`, topped up from everything
    `drawn` when the fill rounds left too few."""
    if config.strategy != "gaaf":  # short of qualified ones: the rest of the population as drawn
        return (pop + [i for i in drawn if not qualified(i)])[: config.population]
    if len(pop) < min(config.population, 2):  # nothing (or one) admitted: breed from the best measured anyway
        pop += [i for i in selection.elitism(drawn, config.population) if i not in pop][: config.population - len(pop)]
    return pop[: config.population]


def build(search: "Search", executor: "Executor") -> list[Individual]:
    """The generational loop's generation 0, from candidates worth breeding from (`qualifies`):
    fresh ones are drawn (a few rounds, every draw recorded) in place of those that do not qualify."""
    cfg = search.config

    def draw(n: int) -> list[Individual]:
        n = search.batch_size(n)  # never more to train than the evaluation budget left
        proposals = [(e, search.init_operator(e), ()) for e in search.draw_first(n)]
        return search.after_batch(executor, search.evaluate(executor, proposals))

    first = draw(cfg.population)
    pop = [i for i in first if search.qualifies(i)]
    for _ in range(gaaf_ga.FILL_ROUNDS):
        if len(pop) >= cfg.population or search.stop_reason(hard_only=True) is not None:
            break
        more = draw(cfg.population - len(pop))
        pop = [search.current(p) for p in pop] + [i for i in more if search.qualifies(i)]
        first += more
    return search.complete_first(pop, first)


__all__ = ["Initialiser", "PRESCREEN_DRAWS", "build", "complete", "parse_guesses", "primitive_trees", "qualifies"]
