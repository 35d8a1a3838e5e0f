"""The search loop: population, variation, selection, budget.

`Search.run()` is a template: it validates, fires events, and delegates each
step to small functions. Every random choice comes from one numpy Generator
seeded by the search seed, and evaluation seeds are derived from the
candidates themselves (gpengine.seeds), so the same seed gives the same search
whatever the number of workers. Nothing here knows MLflow or files: tracking,
journal and progress subscribe to the events.
"""

from __future__ import annotations

import gc
import os
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

import attrs
import numpy as np

import gpengine
from gpengine import fidelity, first_population, gaaf_ga, noise, replacement
from gpengine import init as initialisation
from gpengine import selection
from gpengine.config import LIMIT_KEYS, SearchConfig
from gpengine.evaluation import CandidateEvaluator
from gpengine.events import (
    EventBus,
    GenerationEnded,
    GenerationStats,
    IndividualEvaluated,
    ResultArrived,
    SearchEnded,
    SearchStarted,
)
from gpengine.canonical import canonical_text
from gpengine.checkpoint import CHECKPOINT, lock_search, save_checkpoint, save_limits, save_search_file
from gpengine.errors import GpengineError
from gpengine.evaluator import resolved_settings_of
from gpengine.executor import EvaluatorSpec, Executor, register_local, resolve_backend
from gpengine.expr import Expr
from gpengine.generation_stats import population_stats
from gpengine.hall_of_fame import HallOfFame, information
from gpengine.individual import Individual
from gpengine.journal import Journal
from gpengine.outputs import tracker_for
from gpengine.paths import cache_dir, search_dir
from gpengine.result_store import ResultStore
from gpengine.resume import saved_config, saved_progress
from gpengine.plugins import build_evaluator, load_evaluator_class
from gpengine.variation import Limits, MutationWeights, vary
from primitives import get_set


@attrs.frozen
class SearchOutcome:
    search_id: str
    best: Individual | None
    hall_of_fame: tuple[Individual, ...]
    individuals: tuple[Individual, ...]
    history: tuple[GenerationStats, ...]
    reason: str
    elapsed: float


class EvaluatorFailing(GpengineError):
    """The evaluator fails on every candidate (missing data, broken install): stop, don't burn the budget."""


def new_search_id(evaluator: str, seed: int) -> str:
    """Readable and unique: evaluator, start time, seed, a few random hex digits.

    The random suffix comes from the OS, not the search's generator: it names the
    search and never influences it.
    """
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return f"{evaluator}-{stamp}-s{seed}-{os.urandom(2).hex()}"


class Search:
    """One search: its state (population, records, hall of fame, generator, counters), its events,
    its journal and checkpoints, and the generational loop.

    `run()` is the template: it fires the events, runs a strategy, and saves the last checkpoint.
    The generational loop is `_loop`, its generation 0 gpengine.first_population.build;
    `mode=async` hands the search to gpengine.steady_async.AsyncSteadyState instead. They
    work the search through this small interface
    (not for users: it may change between versions), and through the attributes `config`,
    `rng`, `rungs`, `candidates`, `individuals`, `population`, `generation`, `restored`,
    `known`, `async_state`, `async_resume` and `finished`:

    - proposals: `offspring(n)`, `draw_first(n)`, `init_operator(expr)`, `note_proposed(expr)`;
    - evaluation: `evaluate(executor, proposals)`, `after_batch(executor, batch)`,
      `batch_size(n)`, `next_id()`, `record(done)`, `reevaluate_elites(executor)`;
    - selection: `current(ind)`, `qualifies(ind)`, `complete_first(pop, drawn)`, `survivors(offspring)`;
    - control: `stop_reason(hard_only)`, `end_generation()`.

    Each draws from `rng` exactly as the generational loop does, so a strategy that calls them
    in a fixed order is as reproducible as the loop.
    """

    def __init__(
        self,
        config: SearchConfig,
        evaluator_options: dict[str, Any] | None = None,
        listeners: Iterable[Any] = (),
        search_id: str | None = None,
        resume: bool = False,
        folder: str | None = None,
    ):
        """`folder`: the search's folder under `runs_dir`, when it is not named after the search id
        (a resumed search whose folder was renamed or copied)."""
        self.config = config
        cls = self._set_up_evaluation(evaluator_options)  # a bad option stops here, before anything is written
        self.weights = MutationWeights.from_mapping(config.mutation_weights)
        self.rng = np.random.default_rng(config.seed)
        listeners = list(listeners)
        tracker = tracker_for(config, cls, listeners)  # config.tracking, as `gpengine run` does
        self.bus = EventBus(listeners + ([tracker] if tracker is not None else []))
        self.search_id = search_id or new_search_id(config.evaluator, config.seed)
        self.individuals: list[Individual] = []
        self.population: list[Individual] = []
        self.history: list[GenerationStats] = []
        self.generation = 0
        self.resumed = resume
        self.known: dict[int, Individual] = {}  # journaled results of a resumed search
        self.run_dir = self._open_folder(folder, resume)
        self._lock = lock_search(self.run_dir) if self.run_dir is not None else None  # until run() ends
        self.candidates = CandidateEvaluator(
            pset=self.pset,
            search_seed=config.seed,
            dedup=config.dedup or getattr(cls, "dedup", "fingerprint"),
            prescreen=self._decide(config.prescreen, "prescreen"),
            store=self._open_store(),
            search_id=self.search_id,
        )
        self._started = 0.0
        self._elapsed_before = 0.0
        self.restored = False
        # multi-fidelity rungs (one rung without fidelity=sh) and, per candidate, the record
        # selection should see (highest fidelity, most seeds); both rebuilt from records on resume
        self.rungs = self._rungs()
        self._track_best_record = len(self.rungs) > 1 or config.replicates > 1
        self._top: dict[str, Individual] = {}
        self.hof = HallOfFame(config.hall_of_fame, by_information=self._track_best_record)
        self._failed_records = 0  # records without a measurement, counted as they arrive
        self._ranked_for: list[Individual] | None = None  # the population `_ranked` sorts, best first
        self._ranked: list[Individual] = []
        self._seen_genomes: set[tuple[str, ...]] = set()  # strategy=gaaf: genomes proposed so far
        self.async_state: Any = None  # mode=async: callable giving the proposals in flight (for checkpoints)
        self.async_resume: dict[str, Any] | None = None
        self.finished: str | None = None  # resumed: why the search ended, when it had ended

    def _set_up_evaluation(self, evaluator_options: dict[str, Any] | None) -> type:
        """The evaluator, its primitive set and options, the first-population draws and the
        backend, each checked; returns the evaluator's class."""
        config = self.config
        self.options = dict(evaluator_options or {})
        cls = load_evaluator_class(config.evaluator)
        self.pset = get_set(config.primitives or cls.primitive_set)
        self.options.setdefault("primitives", self.pset.name)
        self.limits = Limits(max_depth=config.max_depth, max_size=config.max_size)
        self.initialiser = first_population.Initialiser(config, self.pset, self.limits)
        self.guesses = self.initialiser.guesses
        # Built once here: validates options (bad ones stop before any work) and
        # serves sequential evaluation without a second construction.
        self.evaluator = build_evaluator(config.evaluator, cls, self.options)
        self.evaluator_cls = cls
        # where evaluations run: a contradiction (a timeout in process) stops before anything is written
        self.backend = resolve_backend(config.backend, config.jobs, self._decide(config.isolate, "isolate"),
                                       config.eval_timeout)
        self.resolved_settings = resolved_settings_of(self.evaluator)  # recorded in search.json and MLflow
        self.spec = EvaluatorSpec.of(config.evaluator, self.options)
        register_local(self.spec, self.evaluator)
        return cls

    def _open_folder(self, folder: str | None, resume: bool) -> Path | None:
        """The search's folder (None: `journal` off), its journal listening first: durable before
        anything else; a new search's search.json written."""
        if not self.config.journal:
            return None
        run_dir = search_dir(self.config.runs_dir, folder or self.search_id, create=True)
        self.bus.listeners.insert(0, Journal(run_dir))
        if not resume:
            save_search_file(run_dir, self.search_id, self.config, self.user_options, gpengine.__version__,
                             resolved=self.resolved_settings)
        return run_dir

    def _rungs(self) -> tuple[float, ...]:
        """The budgets of successive halving (fidelity=sh), else the configured budget alone.
        The evaluator instance's min_budget, so an evaluator may derive it from its options
        (1 epoch of N)."""
        cfg = self.config
        low = cfg.min_budget if cfg.min_budget is not None else float(getattr(self.evaluator, "min_budget", 1.0))
        return fidelity.ladder(low, cfg.budget, cfg.eta) if cfg.fidelity == "sh" else (cfg.budget,)

    def _decide(self, configured: bool | None, attribute: str) -> bool:
        """A search key left unset (None) defers to the evaluator's class attribute."""
        return configured if configured is not None else bool(getattr(self.evaluator_cls, attribute, False))

    @property
    def user_options(self) -> dict[str, Any]:
        return {k: v for k, v in self.options.items() if k != "primitives"}

    def _open_store(self) -> ResultStore | None:
        if not self._decide(self.config.cache, "persistent_cache"):
            return None
        return ResultStore(cache_dir() / "results.sqlite", self.evaluator.config_key())

    # -- resume -------------------------------------------------------------------------
    @classmethod
    def resume(cls, search_id: str, runs_dir: str = "runs", listeners: Iterable[Any] = (),
               overrides: dict[str, Any] | None = None) -> "Search":
        """Continue a search from its journal and last checkpoint (kill -9 included)."""
        directory = search_dir(runs_dir, search_id)
        sid, config, options = saved_config(directory, runs_dir, overrides)
        # the folder it was read from: a renamed or copied one used to be left as it was, its
        # search continued in a new folder named after the id (or in the original's)
        search = cls(config, options, listeners=listeners, search_id=sid, resume=True, folder=search_id)
        journal, state = saved_progress(directory)
        search._restore(state, journal)
        if search.run_dir is not None and set(overrides or ()) & set(LIMIT_KEYS):
            # the search's own limits from now on: a later resume without them goes on to the same end
            save_limits(search.run_dir, config)
        return search

    def _restore(self, state: dict[str, Any] | None, journal: list[Individual]) -> None:
        if state is None:  # killed before the first checkpoint: redo generation 0 from the journal
            self.known = {ind.id: ind for ind in journal}
            return
        n = state["n_individuals"]
        self.individuals = journal[:n]
        if len(self.individuals) != n:
            raise GpengineError(f"journal of {self.search_id} has {len(journal)} records, checkpoint expects {n} "
                                f"(the journal was cut short); move {self.run_dir / CHECKPOINT} away to resume "
                                "from the journal alone")
        self.known = {ind.id: ind for ind in journal[n:]}
        by_id = {ind.id: ind for ind in self.individuals}
        self.population = [by_id[i] for i in state["population"]]
        self.hof = state["hof"]
        self.history = list(state["history"])
        self.generation = state["generation"]
        self.rng.bit_generator.state = state["rng"]
        self.candidates.load_state(state["candidates"])
        self._elapsed_before = state["elapsed"]
        self.restored = True
        self.initialiser.skip_guesses()
        self.async_resume = state.get("async")
        self.finished = state.get("finished")
        for ind in self.individuals:
            self._note(ind)
        self.population = [self.current(p) for p in self.population]

    def _checkpoint(self, finished: str | None = None) -> None:
        if self.run_dir is None:
            return
        save_checkpoint(self.run_dir, {
            "generation": self.generation,
            "n_individuals": len(self.individuals),
            "rng": self.rng.bit_generator.state,
            "population": [ind.id for ind in self.population],
            "hof": self.hof,
            "history": self.history,
            "candidates": self.candidates.state(),
            "elapsed": self._elapsed(),
            "finished": finished,
            "async": self.async_state() if self.async_state is not None else None,
        })

    def _elapsed(self) -> float:
        return self._elapsed_before + (time.monotonic() - self._started)

    # -- the strategy interface (see the class docstring) and its helpers ----------------
    def next_id(self) -> int:
        return len(self.individuals)

    def evaluate(self, executor: Executor, proposals: Sequence[tuple[Expr, str, tuple[int, ...]]],
                  budget: float | None = None) -> list[Individual]:
        """Evaluate a batch of proposals (expr, operator, parent ids); emit in id order.

        New candidates run at the lowest rung's budget (the configured budget without multi-fidelity)."""
        born = []
        for expr, operator, parents in proposals:
            ind = Individual(
                id=self.next_id() + len(born),
                expr=expr,
                generation=self.generation,
                operator=operator,
                parent_ids=parents,
                budget=self.rungs[0] if budget is None else budget,
            )
            born.append(ind)
        done = self.candidates.evaluate(born, executor, known=self.known,
                                        on_arrival=lambda ind: self.bus.emit(ResultArrived(ind)))
        self.record(done)
        return done

    def record(self, done: Sequence[Individual]) -> None:
        """Append evaluated records in id order, tell the listeners, stop if the evaluator is broken."""
        for k, ind in enumerate(done):
            self.individuals.append(ind)
            self._note(ind)
            self.bus.emit(IndividualEvaluated(ind, batch_end=k == len(done) - 1))
        self.hof.update(done)
        if self.candidates.consecutive_failures >= self.config.max_failures:
            raise EvaluatorFailing(
                f"evaluator {self.config.evaluator!r} failed on {self.candidates.consecutive_failures} candidates "
                f"in a row; last error: {self.candidates.last_failure}"
            )

    def _note(self, ind: Individual) -> None:
        """Derived state of one new record: the best record per candidate, GAAF genomes seen."""
        self._failed_records += not ind.result.ok
        if self.config.strategy == "gaaf" and (genes := initialisation.to_genes(ind.expr)) is not None:
            self._seen_genomes.add(genes)
        if not self._track_best_record:
            return
        key = fidelity.identity(ind)
        old = self._top.get(key)
        if old is None or self._information(ind) > self._information(old):
            self._top[key] = ind

    @staticmethod
    def _information(ind: Individual) -> tuple:
        """Which record of a candidate selection sees: measured, highest budget, most seeds, oldest."""
        return (ind.result.ok, *information(ind), -ind.id)

    def current(self, ind: Individual) -> Individual:
        """The record of `ind`'s candidate with the most information (itself without fidelity/noise)."""
        if not self._track_best_record:
            return ind
        return self._top.get(fidelity.identity(ind), ind)

    def note_proposed(self, expr: Expr) -> None:
        """A proposal made before a checkpoint and submitted again on resume: GAAF never draws its
        genome again (the record that would note it is not in the journal yet)."""
        if self.config.strategy == "gaaf":
            self._seen_genomes.add(initialisation.to_genes(expr))

    def _refresh(self, batch: Sequence[Individual]) -> list[Individual]:
        self.population = [self.current(p) for p in self.population]
        return [self.current(c) for c in batch]

    def _promote(self, executor: Executor) -> None:
        """Successive halving: run every promotion due, rung by rung, until none is left."""
        if len(self.rungs) < 2:
            return
        while self.stop_reason(hard_only=True) is None:
            due = fidelity.promotions(self.individuals, self.rungs, self.config.eta)
            if not due:
                return
            budget = due[0][1]
            batch = [(ind.expr, fidelity.PROMOTE, (ind.id,)) for ind, b in due if b == budget]
            self.evaluate(executor, batch[: self.batch_size(len(batch))], budget=budget)  # best first

    def after_batch(self, executor: Executor, batch: list[Individual]) -> list[Individual]:
        """Promotions due after a batch; returns the batch as selection should see it."""
        self._promote(executor)
        return self._refresh(batch)

    def reevaluate_elites(self, executor: Executor) -> None:
        """Noise: the best members get more seeds (gpengine.noise); their records then carry the mean."""
        cfg = self.config
        if cfg.replicates < 2 or self.stop_reason(hard_only=True) is not None:
            return
        done = noise.reevaluate_elites(
            executor, self.candidates, self.individuals, self.population, replicates=cfg.replicates,
            top=cfg.reeval_top, next_id=self.next_id(), generation=self.generation, known=self.known,
            limit=self.batch_size(cfg.reeval_top * cfg.replicates),
        )
        self.record(done)
        self.population = [self.current(p) for p in self.population]

    def init_operator(self, expr: Expr | None = None) -> str:
        """The operator of a first-population record: init-guess, init-primitive, init-<init>."""
        return self.initialiser.operator(expr)

    def qualifies(self, ind: Individual) -> bool:
        """Whether a first-population candidate is worth breeding from (gpengine.first_population)."""
        return first_population.qualifies(ind, self.config, self.evaluator)

    def draw_first(self, n: int) -> list[Expr]:
        """Fresh first-population expressions, drawn until `n` of them would pass the pre-screen."""
        return self.initialiser.passing(self.rng, n, self._seen_genomes, self.candidates.rejects)

    def complete_first(self, pop: list[Individual], drawn: list[Individual]) -> list[Individual]:
        """The first population from the qualified `pop`, topped up from everything `drawn`."""
        return first_population.complete(pop, drawn, self.config, self.qualifies)

    def _random_proposals(self, n: int) -> list[tuple[Expr, str, tuple[int, ...]]]:
        return [(e, "random", ()) for e in self.initialiser.random(self.rng, n, self._seen_genomes)]

    def offspring(self, n: int) -> list[tuple[Expr, str, tuple[int, ...]]]:
        cfg = self.config
        if cfg.strategy == "random":
            return self._random_proposals(n)
        if cfg.strategy == "gaaf":
            return gaaf_ga.children(self.rng, self.population, self.pset, n, self._seen_genomes, cfg.duplicate_retries)
        proposals = []
        # Children identical (canonically) to a member or a sibling waste a slot and an
        # evaluation-free but diversity-costly place: redraw them a few times.
        seen = {ind.canonical for ind in self.population}
        for _ in range(n):
            for _attempt in range(cfg.duplicate_retries + 1):
                child, operator, parent_ids = self._one_child()
                text = canonical_text(child, self.pset)
                if text not in seen:
                    break
            seen.add(text)
            proposals.append((child, operator, parent_ids))
        return proposals

    def _one_child(self) -> tuple[Expr, str, tuple[int, ...]]:
        cfg = self.config
        if cfg.selection == "fitness_proportionate":
            parents = selection.fitness_proportionate(self.rng, self.population, 2)
        else:
            if self._ranked_for is not self.population:  # rank each population once, not per tournament
                self._ranked_for = self.population
                self._ranked = sorted(self.population, key=selection.rank_key)
            parents = selection.tournament(self.rng, self._ranked, 2, k=cfg.tournament_size, ranked=True)
        child, operator, used = vary(
            self.rng, [p.expr for p in parents], self.pset, self.limits,
            p_crossover=cfg.p_crossover, weights=self.weights,
        )
        return child, operator, tuple(parents[i].id for i in used)

    def survivors(self, offspring: list[Individual]) -> list[Individual]:
        """The population after `offspring` (gpengine.replacement)."""
        return replacement.survivors(self.config, self.population, offspring, self.evaluator)

    def _stats(self) -> GenerationStats:
        return population_stats(self.generation, self.population, evaluations=self.candidates.evaluations,
                                failures=self._failed_records, cost=self.candidates.cost)

    def end_generation(self) -> None:
        stats = self._stats()
        self.history.append(stats)
        self.bus.emit(GenerationEnded(stats))
        self._checkpoint()
        # Records, memos and the population live until the search ends: move them out of the
        # cyclic collector's sight, which otherwise rescans them all, again and again (20-30%
        # of a cheap search's time; BENCHMARKS.md). Refcounting still frees what is dropped.
        gc.freeze()

    def stop_reason(self, hard_only: bool = False) -> str | None:
        """Why the search should stop now.

        `hard_only`: only the reasons that forbid any more work, even inside a generation (the
        target reached, an evaluation, time or cost limit spent); not the generation count."""
        cfg = self.config
        if cfg.target_fitness is not None and self.hof.best is not None and self.hof.best.fitness >= cfg.target_fitness:
            return "target"
        if cfg.max_evaluations is not None and self.candidates.evaluations >= cfg.max_evaluations:
            return "evaluations"
        if cfg.max_time is not None and self._elapsed() >= cfg.max_time:
            return "time"
        if cfg.max_cost is not None and self.candidates.cost >= cfg.max_cost:
            return "cost"
        if hard_only:
            return None
        if self.generation >= cfg.generations:
            return "generations"
        return None

    def batch_size(self, default: int) -> int:
        """Children per step; never more than the evaluation budget left."""
        cfg = self.config
        n = default
        if cfg.max_evaluations is not None:
            n = max(1, min(n, cfg.max_evaluations - self.candidates.evaluations))
        return n

    # -- the loop ---------------------------------------------------------------------
    def run(self) -> SearchOutcome:
        cfg = self.config
        self._started = time.monotonic()
        self.bus.emit(
            SearchStarted(
                search_id=self.search_id,
                evaluator=cfg.evaluator,
                evaluator_version=str(getattr(self.evaluator_cls, "version", "0")),
                engine_version=gpengine.__version__,
                config={**cfg.to_flat_dict(), "primitives": self.pset.name,
                        **{f"evaluator.{k}": v for k, v in self.user_options.items()}},
                seed=cfg.seed,
                dataset=self.evaluator.dataset(),
                resumed=self.resumed,
                evaluator_settings=self.resolved_settings,
            )
        )
        for k, ind in enumerate(self.individuals):  # resumed: let listeners complete their records
            self.bus.emit(IndividualEvaluated(ind, batch_end=k == len(self.individuals) - 1, replayed=True))
        reason, ended_cleanly = "failed", False
        try:
            reason = self._loop()
            ended_cleanly = True
        except KeyboardInterrupt:
            reason = "interrupted"
            raise
        finally:
            gc.unfreeze()
            elapsed = self._elapsed()
            # An interrupt or error leaves the last generation's checkpoint as it is, as kill -9 does:
            # the journal holds what came after, and a resume replays it from there. A checkpoint of
            # the state mid-generation made the resume start a new generation at that point.
            try:
                if ended_cleanly:
                    self._checkpoint(finished=reason)
                self.bus.emit(SearchEnded(best=self.hof.best, hall_of_fame=tuple(self.hof), reason=reason,
                                          elapsed=elapsed))
            finally:
                if self._lock is not None:  # the search is another process's to resume now
                    self._lock.close()
                    self._lock = None
        return SearchOutcome(
            search_id=self.search_id,
            best=self.hof.best,
            hall_of_fame=tuple(self.hof),
            individuals=tuple(self.individuals),
            history=tuple(self.history),
            reason=reason,
            elapsed=elapsed,
        )

    def _loop(self) -> str:
        cfg = self.config
        with Executor(self.spec, jobs=cfg.jobs, backend=self.backend, scheduler=cfg.scheduler,
                      timeout=cfg.eval_timeout) as executor:
            if cfg.mode == "async":
                from gpengine.steady_async import AsyncSteadyState

                return AsyncSteadyState(self, executor).run()
            if not self.restored:
                self.population = first_population.build(self, executor)
                self.reevaluate_elites(executor)
                self.end_generation()
            while True:
                stop = self.stop_reason()
                if stop is not None:
                    return stop
                self.generation += 1
                batches, n_children = generation_batches(cfg)
                for _ in range(batches):
                    children = self.evaluate(executor, self.offspring(self.batch_size(n_children)))
                    self.population = self.survivors(self.after_batch(executor, children))
                    if self.stop_reason(hard_only=True) is not None:
                        break
                self.reevaluate_elites(executor)
                self.end_generation()


def generation_batches(cfg: SearchConfig) -> tuple[int, int]:
    """How a generation's children are made: (batches, children per batch).

    GAAF and the generational loop breed one batch; steady state breeds `jobs` children at a
    time (each batch's survivors in place before the next), `population // jobs` times; async
    integrates `population` children one by one (gpengine.steady_async).
    """
    if cfg.mode == "async":
        return cfg.population, 1
    if cfg.strategy == "gaaf":
        return 1, cfg.offspring or gaaf_ga.DEFAULT_OFFSPRING
    if cfg.mode == "steady_state":
        n = cfg.offspring or max(1, cfg.jobs)
        return max(1, cfg.population // n), n
    return 1, cfg.offspring or (cfg.population - (0 if cfg.selection == "nsga2" else cfg.elitism))


def run_search(config: SearchConfig, evaluator_options: dict[str, Any] | None = None,
               listeners: Iterable[Any] = ()) -> SearchOutcome:
    return Search(config, evaluator_options, listeners).run()


__all__ = ["Search", "SearchOutcome", "run_search"]
