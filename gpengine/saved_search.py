"""A finished (or interrupted) search read back for export and reports.

`export` and `report` take a SEARCH argument that a user copies from
`gpengine run`'s summary or from the MLflow UI. Two sources answer it:

* the local folder ``runs/<id>/`` (``search.json``: configuration and
  evaluator options; ``journal.jsonl``: every individual), which is complete
  and exact;
* MLflow alone (`tracking.readback`), for a search run on another machine:
  the run's params hold the flattened configuration and the lineage CSV or
  child runs hold the individuals.

Either way the result is one `SavedSearch` of plain lineage rows, so the
commands downstream never care where it came from. The MLflow run is also
looked up for a local search (to log a report beside it), but only in a
store that already exists: reading must never create an empty database.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs

from gpengine.errors import GpengineError
from gpengine.tracking import lineage

_EVALUATOR_PREFIX = "evaluator."


@attrs.define
class SavedSearch:
    search_id: str
    evaluator: str
    primitives: str  # name of the primitive set the search used
    config: dict[str, Any]  # search keys (nested tables as dicts)
    evaluator_options: dict[str, Any]
    rows: list[dict[str, Any]]  # lineage rows, sorted by id, each with its Result "metrics" ({} if unknown)
    source: str  # "runs/<id>" or the tracking URI
    run: Any = None  # the MLflow search run, when one was found
    client: Any = None
    # per-generation statistics as the search logged them (gpengine.generation_stats), generation order
    history: list[dict[str, Any]] = attrs.Factory(list)

    def best(self, id_: int | None = None) -> dict[str, Any]:
        """The row of individual `id_`, or of the best candidate (`lineage.standing`)."""
        if id_ is not None:
            for r in self.rows:
                if r["id"] == id_:
                    return r
            raise GpengineError(f"search {self.search_id} has no individual {id_} (ids 0..{len(self.rows) - 1})")
        ok = lineage.standing(self.rows)
        if not ok:
            raise GpengineError(f"search {self.search_id} has no individual with a fitness")
        return ok[0]


def load(search: str, runs_dir: str | Path = "runs", tracking_uri: str | None = None,
         want_run: bool = True) -> SavedSearch:
    """The search `search` from runs_dir/<search>/, else from MLflow; GpengineError when neither has it."""
    folder = Path(runs_dir) / search
    if (folder / "search.json").is_file():
        saved = _from_folder(folder)
        if want_run:
            saved.client, saved.run = _find_run(saved.search_id, tracking_uri, required=False)
        return saved
    client, run = _find_run(search, tracking_uri, required=True, folder=folder)
    if run is None:
        raise GpengineError(f"no search {search!r}: neither {folder}/search.json nor a run in the tracking store")
    return _from_mlflow(client, run)


def _from_folder(folder: Path) -> SavedSearch:
    from gpengine.journal import JOURNAL, read_journal

    path = folder / "search.json"
    try:
        data = json.loads(path.read_text())
        config = dict(data["config"])
        options = dict(data["evaluator_options"])
        search_id = str(data["search_id"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise GpengineError(f"{path} is damaged: {exc}") from None
    rows = []
    for ind in read_journal(folder / JOURNAL):
        row = lineage.row_of(ind)
        row["metrics"] = dict(ind.result.metrics)  # replicate records keep seed_fitness here
        rows.append(row)
    evaluator = str(config["evaluator"])
    return SavedSearch(search_id, evaluator, _primitives(evaluator, config), config, options,
                       sorted(rows, key=lambda r: r["id"]), str(folder), history=_history_of_folder(folder))


def _history_of_folder(folder: Path) -> list[dict[str, Any]]:
    """The statistics of the last checkpoint; none when the search stopped before its first one."""
    from gpengine.checkpoint import load_checkpoint
    from gpengine.generation_stats import as_rows

    try:
        state = load_checkpoint(folder)
    except GpengineError:  # a damaged checkpoint costs the report its table, not the report
        return []
    return as_rows(state["history"]) if state else []


def _history_of_run(client: Any, run: Any) -> list[dict[str, Any]]:
    """The per-generation metrics of the search run (step = generation)."""
    from gpengine.generation_stats import FIELDS

    by_gen: dict[int, dict[str, Any]] = {}
    for name in FIELDS[1:]:
        for m in client.get_metric_history(run.info.run_id, name):
            by_gen.setdefault(int(m.step), {k: float("nan") for k in FIELDS} | {"generation": int(m.step)})[name] = m.value
    return [by_gen[g] for g in sorted(by_gen)]


def _primitives(evaluator: str, config: dict[str, Any]) -> str:
    if config.get("primitives"):
        return str(config["primitives"])
    from gpengine.plugins import load_evaluator_class

    return load_evaluator_class(evaluator).primitive_set


def _find_run(search: str, tracking_uri: str | None, required: bool, folder: Path | None = None) -> tuple[Any, Any]:
    """(client, run) of the search in the store, or (None, None) when there is none and it is not required
    (`folder`: where the search was looked for first, for the message)."""
    from gpengine.tracking import readback, store

    uri = store.resolve_uri(tracking_uri)
    db = store.sqlite_path(uri)
    if db is not None and not db.exists():
        if required:
            raise GpengineError(f"no search {search!r}: neither {folder}/search.json nor a tracking store at {db}")
        return None, None
    try:
        client = store.client(uri)
        return client, readback.find_search(client, search)
    except GpengineError:
        if required:
            raise
        return None, None


def _from_mlflow(client: Any, run: Any) -> SavedSearch:
    from gpengine.config import parse_value
    from gpengine.tracking import readback
    from gpengine.tracking.mlflow_tracker import RESOLVED_PREFIX

    summary = readback.search_summary(run)
    config: dict[str, Any] = {}
    options: dict[str, Any] = {}
    for key, text in run.data.params.items():
        if text.startswith("(") and text.endswith(")"):  # a tuple as runs before JSON lists logged it
            text = "[" + text[1:-1] + "]"  # Python's repr of strings reads as TOML's literal strings
        value = None if text == "None" else parse_value(text)
        if text in ("True", "False"):
            value = text == "True"
        if key.startswith(RESOLVED_PREFIX):
            continue  # what the evaluator made of the options: a record, not an option to rebuild it from
        if key.startswith(_EVALUATOR_PREFIX):
            options[key[len(_EVALUATOR_PREFIX):]] = value
        elif "." in key:
            head, _, rest = key.partition(".")
            config.setdefault(head, {})[rest] = value
        else:
            config[key] = value
    evaluator = summary["evaluator"] or str(config.get("evaluator", ""))
    config["evaluator"] = evaluator
    rows = readback.load_individuals(client, run)
    metrics = {r.data.tags.get("gp.id"): dict(r.data.metrics) for r in readback.child_runs(client, run)}
    for row in rows:
        row["metrics"] = metrics.get(str(row["id"]), {})
    return SavedSearch(summary["search_id"], evaluator, _primitives(evaluator, config), config, options,
                       rows, client.tracking_uri, run=run, client=client, history=_history_of_run(client, run))
