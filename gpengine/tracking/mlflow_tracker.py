"""The MLflow listener: turns search events into experiments, runs, metrics and artifacts.

Scheme (see DESIGN.md and issue 4): one experiment per evaluator
(``gpengine/<evaluator>``); one top-level run per search, found again by its
``gp.search_id`` tag on resume; one child run per individual (or, in
"notable" mode, only for the best of each generation, the hall of fame and
the best's ancestors, created when the search ends). Every individual is in
the lineage CSV either way.

All writes go through `MlflowClient` batch calls on one background writer
thread (see `writer`), so the search loop pays for queueing, not for the
store. Subscribe an instance to the search's `EventBus`.
"""

from __future__ import annotations

import contextlib
import json
import math
import posixpath
import re
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from gpengine.errors import ConfigError
from gpengine.events import GenerationEnded, IndividualEvaluated, SearchEnded, SearchStarted
from gpengine.tracking import lineage, readback, store
from gpengine.tracking.genealogy import Genealogy, write_html, write_svg
from gpengine.tracking.plots import plot_fitness
from gpengine.tracking.writer import Writer

CHILD_RUN_MODES = ("auto", "all", "notable")
MAX_PARAM_LEN, MAX_TAG_LEN, MAX_KEY_LEN = 6000, 8000, 250
MAX_BATCH_METRICS, MAX_BATCH_PARAMS = 1000, 100
MAX_DIGEST_LEN = 36
RESOLVED_PREFIX = "evaluator.resolved."  # params of Evaluator.resolved_settings(), beside the user's options
ENGINE_METRICS = ("fitness", "generation", "size", "depth", "cost", "budget")
_POP_KEYS = ("population", "population_size", "pop_size")
_GEN_KEYS = ("generations", "n_generations", "max_generations")
_EVAL_KEYS = ("max_evaluations", "evaluations", "max_evals")


def _now() -> int:
    return int(time.time() * 1000)


def _clip(text: Any, n: int) -> str:
    text = str(text)
    return text if len(text) <= n else text[: n - 3] + "..."


_BAD_KEY_CHARS = re.compile(r"[^\w.\- :/]")


def _metric_key(name: Any) -> str:
    """A plugin's metric, curve or setting name as MLflow accepts it: characters outside letters, digits,
    `_ - . : /` and space become `_` (`acc@1` -> `acc_1`), and a name that is not a plain relative
    path (`/x`, `a//b`, `../x`) loses its slashes; clipped to MLflow's key length."""
    key = _BAD_KEY_CHARS.sub("_", str(name))
    norm = posixpath.normpath(key)
    if norm != key or norm.startswith(("..", "/")) or norm == ".":
        key = key.replace("/", "_")
        if key in ("", ".") or key.startswith(".."):
            key = "_" + key
    return _clip(key, MAX_KEY_LEN)


def _refused_by_store(exc: BaseException) -> bool:
    """The store answered, and refused what was sent (a bad name or value): retrying cannot help."""
    return getattr(exc, "error_code", None) == "INVALID_PARAMETER_VALUE"


def _params(event: SearchStarted) -> dict[str, Any]:
    """The search run's params: the flat config, then the evaluator's resolved settings."""
    # a list (guesses) as JSON, which reads back as a TOML array; str() of a tuple does not
    params = {k: json.dumps(list(v)) if isinstance(v, (list, tuple)) else v for k, v in event.config.items()}
    for k, v in event.evaluator_settings.items():
        # scalars print as the config's params do (str); a list or table as JSON; a plugin's key
        # MLflow would refuse (`dev@ice`) under a name it accepts, as metric names are
        params[_metric_key(RESOLVED_PREFIX + str(k))] = json.dumps(v) if isinstance(v, (list, dict)) else v
    return params


def run_name(ind: Any) -> str:
    """Child run name: ``g012-i00345-crossover``."""
    return f"g{ind.generation:03d}-i{ind.id:05d}-{ind.operator}"


def estimate_individuals(config: Mapping[str, Any]) -> int | None:
    """How many individuals a search may create, from its flat config; None if unknown."""
    found: dict[str, float] = {}
    for key, value in config.items():
        leaf = str(key).rsplit(".", 1)[-1]
        try:
            v = float(value)
        except (TypeError, ValueError):
            continue
        for kind, keys in (("pop", _POP_KEYS), ("gen", _GEN_KEYS), ("evals", _EVAL_KEYS)):
            if leaf in keys and v > 0:
                found[kind] = v
    guesses = []
    if "pop" in found and "gen" in found:
        guesses.append(found["pop"] * (found["gen"] + 1))  # generation 0, then `gen` more
    if "evals" in found:
        guesses.append(found["evals"])
    return int(min(guesses)) if guesses else None


class MlflowTracker:
    """Event listener that logs a search to MLflow.

    `tracking_uri`: explicit store (default: MLFLOW_TRACKING_URI, else
    ``runs/mlflow.db``). `child_runs`: "all", "notable", or "auto" (notable
    when the search may create more than `notable_threshold` individuals,
    judged from the config, else counted as they arrive; or as soon as more
    than `max_backlog` child runs wait to be written, i.e. individuals come
    faster than the store takes them, as with very cheap evaluators).
    `evaluator_plot`: optional callable(individual) -> PNG path or None,
    logged on child runs. `max_ancestors`: in notable mode, child runs for at most
    this many of the best's ancestors, the nearest first (all of them are in the
    lineage CSV and the genealogy page).
    """

    def __init__(
        self,
        tracking_uri: str | None = None,
        child_runs: str = "auto",
        notable_threshold: int = 2000,
        evaluator_plot: Callable[[Any], Any] | None = None,
        max_backlog: int = 100,
        max_ancestors: int = 200,
    ):
        if child_runs not in CHILD_RUN_MODES:
            raise ConfigError(f"unknown child_runs mode {child_runs!r} (allowed: {', '.join(CHILD_RUN_MODES)})")
        self.tracking_uri = store.check_uri(store.resolve_uri(tracking_uri))
        # Checked here, before the search makes its folder or spends any compute: a store MLflow refuses,
        # or a server that is down, is nearly always a typo or a server not started yet. Stopping at once
        # with one line costs the user nothing; carrying on (as an outage mid-search rightly does, see
        # `writer`) would run the whole search with no search run to write to, for a resume to repair.
        store.check_reachable(self.tracking_uri)
        self.child_runs = child_runs
        self.notable_threshold = int(notable_threshold)
        self.max_backlog = int(max_backlog)
        self.max_ancestors = int(max_ancestors)
        self.evaluator_plot = evaluator_plot
        self.client: Any = None
        self.experiment_id = ""
        self.run_id = ""
        self.search_id = ""
        self.mode = "all"
        self.rows: dict[int, dict[str, Any]] = {}
        self.individuals: dict[int, Any] = {}
        self.child_run_ids: dict[int, str] = {}  # filled by the writer thread
        self.stats: list[Any] = []
        self._queued: set[int] = set()
        self._last_step = -1
        self._writer: Writer | None = None
        self.queue_seconds = 0.0  # main-thread time spent in on_individual, for benchmarks
        self.main_seconds = 0.0  # main-thread time in the other events (start, generations, the end's writes)
        self.end_seconds = 0.0  # of which the end of the search: its child runs, artifacts, summary
        self._busy_before_end = 0.0  # the writer's store time before the end (the end's is in end_seconds)

    # ----------------------------------------------------------------- events
    @contextlib.contextmanager
    def _main_time(self):
        """Count the enclosed main-thread work in `main_seconds` (the search run's tracking_seconds)."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.main_seconds += time.perf_counter() - t0

    def on_search_start(self, event: SearchStarted) -> None:
        with self._main_time():
            self._start(event)

    def _start(self, event: SearchStarted) -> None:
        self.client = store.client(self.tracking_uri)
        self.search_id = event.search_id
        self.experiment_id = self._experiment(f"{readback.EXPERIMENT_PREFIX}{event.evaluator}")
        existing = self._existing_run(event.search_id)
        if existing is None:
            self._create_search_run(event)
        else:
            self._reopen(existing, event)
        self.mode = self._initial_mode(event.config)
        self.client.set_tag(self.run_id, "gp.child_runs", self.mode)
        if self._writer is None:
            self._writer = Writer(refused=_refused_by_store)

    def on_individual(self, event: IndividualEvaluated) -> None:
        t0 = time.perf_counter()
        ind = event.individual
        self.rows[ind.id] = lineage.row_of(ind)
        self.individuals[ind.id] = ind
        if self.mode == "all" and self.child_runs == "auto":
            if len(self.rows) > self.notable_threshold:
                self._switch_to_notable(f"more than {self.notable_threshold} individuals")
            elif self._writer.pending > self.max_backlog:
                self._switch_to_notable(f"more than {self.max_backlog} child runs waiting to be written")
        if self.mode == "all":
            self._queue_child(ind)
        else:
            self._writer.check()
        self.queue_seconds += time.perf_counter() - t0

    def on_generation(self, event: GenerationEnded) -> None:
        with self._main_time():
            self._generation(event)

    def _generation(self, event: GenerationEnded) -> None:
        s = event.stats
        if s.generation <= self._last_step:
            return  # already logged before a resume
        self.stats.append(s)
        self._last_step = s.generation
        ts = _now()
        from mlflow.entities import Metric

        metrics = [
            Metric(k, float(getattr(s, k)), ts, int(s.generation))
            for k in ("best", "mean", "median", "diversity", "evaluations", "failures", "cost")
            if math.isfinite(float(getattr(s, k)))
        ]
        self._writer.submit(self.client.log_batch, self.run_id, metrics, what=f"generation {s.generation} metrics")

    def on_search_end(self, event: SearchEnded) -> None:
        if self._writer is None:
            return  # the start failed: nothing of ours to finish
        try:
            t0 = time.perf_counter()
            self._busy_before_end = self._writer.busy_seconds
            with self._main_time():
                if self.mode == "notable":
                    for i in sorted(self._notable_ids(event)):
                        self._queue_child(self.individuals.get(i))
                self._writer.flush()
                with tempfile.TemporaryDirectory(prefix="gpengine-artifacts-") as tmp:
                    self._write_artifacts(Path(tmp), event)
                    self.client.log_artifacts(self.run_id, tmp)
            self.end_seconds = time.perf_counter() - t0
            self._log_summary(event)
        finally:
            self._writer.close()
            self._writer = None

    # ------------------------------------------------------------ search run
    def _experiment(self, name: str) -> str:
        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        try:
            return self.client.create_experiment(name, artifact_location=store.artifact_location(self.tracking_uri, name))
        except Exception:  # created meanwhile by another process: use theirs
            exp = self.client.get_experiment_by_name(name)
            if exp is None:
                raise
            return exp.experiment_id

    def _existing_run(self, search_id: str) -> Any:
        runs = self.client.search_runs(
            [self.experiment_id],
            f"tags.`{readback.TAG_SEARCH_ID}` = {readback._q(search_id)} "
            f"and tags.`{readback.TAG_KIND}` = '{readback.KIND_SEARCH}'",
            max_results=1,
        )
        return runs[0] if runs else None

    def _create_search_run(self, event: SearchStarted) -> None:
        from mlflow.entities import Param

        tags = {
            readback.TAG_SEARCH_ID: event.search_id,
            readback.TAG_KIND: readback.KIND_SEARCH,
            "gp.evaluator": event.evaluator,
            "gp.engine_version": event.engine_version,
            "gp.evaluator_version": event.evaluator_version,
            "gp.seed": str(event.seed),
        }
        run = self.client.create_run(self.experiment_id, start_time=_now(), tags=tags, run_name=event.search_id)
        self.run_id = run.info.run_id
        params = [Param(_clip(k, MAX_KEY_LEN), _clip(v, MAX_PARAM_LEN)) for k, v in sorted(_params(event).items())]
        for i in range(0, len(params), MAX_BATCH_PARAMS):
            self.client.log_batch(self.run_id, params=params[i : i + MAX_BATCH_PARAMS])
        if event.dataset is not None:
            self._log_dataset(event.dataset)

    def _log_dataset(self, ds: Any) -> None:
        import json

        from mlflow.entities import Dataset, DatasetInput, InputTag

        profile = json.dumps({"n_train": ds.n_train, "n_validation": ds.n_validation})
        dataset = Dataset(
            name=ds.name,
            digest=_clip(ds.digest, MAX_DIGEST_LEN),
            source_type="local" if not ds.source or "://" not in ds.source else ds.source.split("://", 1)[0],
            source=json.dumps({"uri": ds.source or ds.name}),
            profile=profile,
        )
        self.client.log_inputs(self.run_id, [DatasetInput(dataset, [InputTag("mlflow.data.context", "training")])])

    def _reopen(self, run: Any, event: SearchStarted) -> None:
        """Resume: reuse the run, learn which individuals already have child runs."""
        from mlflow.entities import Param

        self.run_id = run.info.run_id
        self.client.update_run(self.run_id, status="RUNNING")
        wanted = _params(event)
        new = [
            Param(_clip(k, MAX_KEY_LEN), _clip(v, MAX_PARAM_LEN))
            for k, v in sorted(wanted.items())
            if _clip(k, MAX_KEY_LEN) not in run.data.params
        ]
        for i in range(0, len(new), MAX_BATCH_PARAMS):
            self.client.log_batch(self.run_id, params=new[i : i + MAX_BATCH_PARAMS])
        # MLflow params are immutable: record which settings the resume changed (a resolved setting
        # changes when the code resumed with resolves a profile or "auto" differently)
        changed = sorted(
            k
            for k, v in wanted.items()
            if run.data.params.get(_clip(k, MAX_KEY_LEN), _clip(v, MAX_PARAM_LEN)) != _clip(v, MAX_PARAM_LEN)
        )
        resumes = int(run.data.tags.get("gp.resumes", "0")) + 1
        tags = {"gp.resumes": str(resumes)}
        if changed:
            tags[f"gp.resume{resumes}.changed"] = _clip(",".join(changed), MAX_TAG_LEN)
        for k, v in tags.items():
            self.client.set_tag(self.run_id, k, v)
        for child in readback.child_runs(self.client, run, status="RUNNING"):
            # created, never terminated: the search was killed while writing it (metrics missing or part
            # written). Gone, it is written whole again when the resume replays the journal.
            if "gp.id" in child.data.tags:
                self.client.delete_run(child.info.run_id)
        for row in readback.load_individuals(self.client, run):
            self.rows.setdefault(row["id"], {k: row[k] for k in lineage.COLUMNS})
            if row.get("run_id"):
                self.child_run_ids[row["id"]] = row["run_id"]
                self._queued.add(row["id"])
        self.stats = self._logged_stats()
        self._last_step = max((s["generation"] for s in self.stats), default=-1)

    def _switch_to_notable(self, why: str) -> None:
        """Stop creating a run for everyone (those already queued are still written)."""
        self.mode = "notable"
        tags = {"gp.child_runs": "notable", "gp.child_runs_reason": why}
        for k, v in tags.items():
            self._writer.submit(self.client.set_tag, self.run_id, k, v, what="set_tag")

    def _logged_stats(self) -> list[dict[str, float]]:
        """Generation metrics already in the run, so the fitness plot of a resumed search is whole."""
        by_gen: dict[int, dict[str, float]] = {}
        for name in ("best", "mean", "median"):
            for m in self.client.get_metric_history(self.run_id, name):
                by_gen.setdefault(m.step, {"generation": m.step})[name] = m.value
        return [by_gen[g] for g in sorted(by_gen)]

    def _initial_mode(self, config: Mapping[str, Any]) -> str:
        if self.child_runs != "auto":
            return self.child_runs
        estimate = estimate_individuals(config)
        return "notable" if estimate is not None and estimate > self.notable_threshold else "all"

    # ------------------------------------------------------------ child runs
    def _queue_child(self, ind: Any) -> None:
        if ind is None or ind.id in self._queued:
            return
        self._queued.add(ind.id)
        self._writer.submit(self._log_child, ind, what=f"child run of individual {ind.id}")

    def _log_child(self, ind: Any) -> None:
        """Runs on the writer thread: create, log everything in batches, terminate."""
        from mlflow.entities import Metric

        res = ind.result
        parent_runs = [self.child_run_ids.get(p, "-") for p in ind.parent_ids]
        tags = {
            "mlflow.parentRunId": self.run_id,
            readback.TAG_SEARCH_ID: self.search_id,
            readback.TAG_KIND: readback.KIND_INDIVIDUAL,
            "gp.id": str(ind.id),
            "gp.generation": str(ind.generation),
            "gp.parent_ids": lineage.format_ids(ind.parent_ids),
            "gp.parent_run_ids": ",".join(parent_runs),
            "gp.operator": ind.operator,
            "gp.expr": _clip(ind.expr, MAX_TAG_LEN),
            "gp.canonical": _clip(ind.canonical, MAX_TAG_LEN),
            "gp.expr_hash": ind.expr_hash,
            "gp.fingerprint": ind.fingerprint,
            "gp.status": res.status,
            "gp.message": _clip(res.message, MAX_TAG_LEN),
            "gp.cached": "true" if ind.cached else "false",
            "gp.seed": str(ind.seed),
        }
        start = _now()
        run_id = self.client.create_run(self.experiment_id, start_time=start, tags=tags, run_name=run_name(ind)).info.run_id
        values = {
            "generation": ind.generation,
            "size": ind.size,
            "depth": ind.depth,
            "cost": res.cost,
            "budget": ind.budget,
        }
        if math.isfinite(res.fitness):
            values["fitness"] = res.fitness
        for k, v in res.metrics.items():
            values[f"final/{k}" if k in ENGINE_METRICS or k in res.curves else k] = v
        metrics = [Metric(_metric_key(k), float(v), start, 0) for k, v in values.items() if math.isfinite(float(v))]
        for name, curve in res.curves.items():
            metrics.extend(
                Metric(_metric_key(name), float(v), start, epoch)
                for epoch, v in enumerate(curve, start=1)
                if math.isfinite(v)
            )
        for i in range(0, len(metrics), MAX_BATCH_METRICS):
            self.client.log_batch(run_id, metrics=metrics[i : i + MAX_BATCH_METRICS])
        if self.evaluator_plot is not None:
            try:
                path = self.evaluator_plot(ind)
            except Exception:  # noqa: BLE001 - a picture never stops a search
                path = None
            if path:
                self.client.log_artifact(run_id, str(path))
        self.client.set_terminated(run_id, "FINISHED" if res.ok else "FAILED", end_time=_now())
        self.child_run_ids[ind.id] = run_id

    def _notable_ids(self, event: SearchEnded) -> set[int]:
        """Best of each generation, hall of fame, and the best's nearest `max_ancestors` ancestors.

        The whole ancestry is not bounded: with crossover it spreads back over most of each
        earlier population (3,073 of 12,260 individuals in a 300 x 40 symreg search), and every
        child run costs about 30 ms of store writes, all at the end of the search, so notable mode
        spent two minutes after an 8-second search. Breadth first keeps the closest relatives;
        the lineage CSV and the genealogy page still hold every ancestor.
        """
        g = Genealogy(self.rows.values())
        ids = {r["id"] for r in g.best_per_generation().values()}
        ids.update(h.id for h in event.hall_of_fame if h.id in g)
        ids.update(s.best_id for s in self.stats if getattr(s, "best_id", -1) in self.rows)
        if event.best is not None:
            line = g.ancestors(event.best.id)  # the best itself first, then breadth first
            ids.update(line[: self.max_ancestors + 1])
            if len(line) - 1 > self.max_ancestors:
                self._writer.submit(self.client.set_tag, self.run_id, "gp.notable_ancestors",
                                    f"{self.max_ancestors} nearest of {len(line) - 1} (all in lineage.csv)",
                                    what="set_tag")
        return {i for i in ids if i in self.individuals}

    # ------------------------------------------------------------- the end
    def _write_artifacts(self, folder: Path, event: SearchEnded) -> None:
        rows = list(self.rows.values())
        g = Genealogy(rows)
        hof = [h.id for h in event.hall_of_fame]
        best = event.best.id if event.best is not None and event.best.id in g else None
        lineage.write_csv(rows, folder / readback.LINEAGE_CSV)
        write_html(g, folder / "genealogy.html", title=f"genealogy of {self.search_id}", hall_of_fame=hof)
        write_svg(g, folder / "best_ancestry.svg", root=best)
        plot_fitness(self.stats, folder / "fitness.png", title=f"fitness of {self.search_id}")

    def _log_summary(self, event: SearchEnded) -> None:
        from mlflow.entities import Metric, RunTag

        ts = _now()
        metrics = [Metric("individuals", float(len(self.rows)), ts, 0), Metric("elapsed", float(event.elapsed), ts, 0)]
        # What tracking itself cost: the main thread's time in these events (the end's wait for the
        # writer included) plus the writer thread's time in store calls before the end (which
        # overlaps evaluations, so this is an upper bound). The writer's calls during the end are
        # already in the end's wait: counting them again made tracking_seconds exceed the wall time.
        # The share is of the whole wall time, the search then tracking's end (at most 1).
        spent = self.main_seconds + self.queue_seconds + self._busy_before_end
        metrics.append(Metric("tracking_seconds", spent, ts, 0))
        metrics.append(Metric("tracking_end_seconds", self.end_seconds, ts, 0))
        wall = event.elapsed + self.end_seconds
        if wall > 0:
            metrics.append(Metric("tracking_share", min(spent / wall, 1.0), ts, 0))
        tags = [RunTag("gp.end_reason", event.reason)]
        best = event.best
        note = f"**{self.search_id}**: {len(self.rows)} individuals, ended by {event.reason}."
        if best is not None:
            if math.isfinite(best.fitness):
                metrics.append(Metric("best_fitness", float(best.fitness), ts, 0))
            tags += [RunTag("gp.best_id", str(best.id)), RunTag("gp.best_expr", _clip(best.expr, MAX_TAG_LEN))]
            if best.id in self.child_run_ids:
                tags.append(RunTag("gp.best_run_id", self.child_run_ids[best.id]))
            note += f"\n\nBest: #{best.id} fitness {best.fitness:.6g}: `{_clip(best.expr, 500)}`"
        note += "\n\nArtifacts: genealogy.html (open it), best_ancestry.svg, lineage.csv, fitness.png."
        tags.append(RunTag("mlflow.note.content", _clip(note, MAX_TAG_LEN)))
        self.client.log_batch(self.run_id, metrics=metrics, tags=tags)
        status = {"failed": "FAILED", "stopped": "KILLED", "interrupted": "KILLED"}.get(event.reason, "FINISHED")
        self.client.set_terminated(self.run_id, status, end_time=_now())
