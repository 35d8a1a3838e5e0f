"""Read a search back from MLflow alone: no journal, no engine state.

Everything `gpengine show` and `gpengine lineage` print comes from here, and
so does the tracker's own knowledge of a search it resumes. Two sources,
merged: the child runs (tags ``gp.*`` and metrics, present while the search
runs) and the lineage CSV artifact (everyone, written when the search ends,
also in "notable" mode where only some individuals have a child run).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import tempfile
from typing import Any, Iterable

from gpengine.errors import GpengineError
from gpengine.tracking import lineage
from gpengine.tracking.genealogy import Genealogy

EXPERIMENT_PREFIX = "gpengine/"
TAG_SEARCH_ID = "gp.search_id"
TAG_KIND = "gp.kind"
KIND_SEARCH, KIND_INDIVIDUAL = "search", "individual"
LINEAGE_CSV = "lineage.csv"
_PAGE = 5000
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
_PROGRESS_VAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"


def _q(value: str) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def experiment_ids(client: Any) -> list[str]:
    exps = client.search_experiments(filter_string=f"name LIKE {_q(EXPERIMENT_PREFIX + '%')}")
    return [e.experiment_id for e in exps]


def search_runs(client: Any, experiment_ids: list[str], filter_string: str, order_by: list[str] | None = None) -> list:
    """All runs matching the filter, following page tokens."""
    out: list = []
    token = None
    while True:
        page = client.search_runs(experiment_ids, filter_string, max_results=_PAGE, order_by=order_by, page_token=token)
        out.extend(page)
        token = page.token
        if not token:
            return out


def find_search(client: Any, search: str | None = None) -> Any:
    """The search run: latest if `search` is None, else by search id, unique id prefix, or run id."""
    exps = experiment_ids(client)
    kind = f"tags.`{TAG_KIND}` = {_q(KIND_SEARCH)}"
    if search is None:
        runs = client.search_runs(exps, kind, max_results=1, order_by=["attributes.start_time DESC"]) if exps else []
        if not runs:
            raise GpengineError(f"no gpengine search in the tracking store {client.tracking_uri}")
        return runs[0]
    if not search.strip():  # every id starts with "": it would pick the only search, or call them all ambiguous
        raise GpengineError("the search id is empty: give a search id, a prefix of one, or a run id "
                            "(or none for the latest search)")
    if exps:
        runs = search_runs(client, exps, f"{kind} and tags.`{TAG_SEARCH_ID}` = {_q(search)}")
        if runs:
            return runs[0]
    if _RUN_ID.match(search):
        try:
            return client.get_run(search)
        except Exception:  # noqa: BLE001 - fall through to the clear error below
            pass
    if exps:
        runs = _by_prefix(client, exps, kind, search)
        if len(runs) == 1:
            return runs[0]
        if len(runs) > 1:
            names = ", ".join(sorted(r.data.tags.get(TAG_SEARCH_ID, "?") for r in runs)[:5])
            raise GpengineError(f"search {search!r} is ambiguous: {names}")
    raise GpengineError(f"no search {search!r} in the tracking store {client.tracking_uri}")


def _by_prefix(client: Any, exps: list[str], kind: str, prefix: str) -> list:
    """The search runs whose id starts with `prefix`, taken literally.

    MLflow's LIKE knows no ESCAPE clause, so a `%` or `_` in the prefix would be a wildcard
    (`bnn_` matched bnn-cifar too): the store is asked only for the part before the first of
    them, and the prefix itself is checked here."""
    literal = re.split(r"[%_]", prefix, maxsplit=1)[0]
    runs = search_runs(client, exps, f"{kind} and tags.`{TAG_SEARCH_ID}` LIKE {_q(literal + '%')}")
    return [r for r in runs if r.data.tags.get(TAG_SEARCH_ID, "").startswith(prefix)]


def child_runs(client: Any, search_run: Any, status: str | None = None) -> list:
    """Child runs of a search run (one per logged individual); `status`: only those in that state."""
    rid = search_run.info.run_id
    where = f"tags.`mlflow.parentRunId` = {_q(rid)}" + (f" and attributes.status = {_q(status)}" if status else "")
    return search_runs(client, [search_run.info.experiment_id], where)


def row_of_run(run: Any) -> dict[str, Any]:
    """A lineage row from one child run's tags and metrics, plus its run id."""
    tags, metrics = run.data.tags, run.data.metrics
    raw: dict[str, Any] = {
        "id": tags.get("gp.id"),
        "generation": metrics.get("generation", tags.get("gp.generation")),
        "operator": tags.get("gp.operator", ""),
        "parent_ids": tags.get("gp.parent_ids", ""),
        "expr": tags.get("gp.expr", ""),
        "canonical": tags.get("gp.canonical"),
        "expr_hash": tags.get("gp.expr_hash"),
        "fingerprint": tags.get("gp.fingerprint"),
        "status": tags.get("gp.status", ""),
        "fitness": metrics.get("fitness", math.nan),
        "budget": metrics.get("budget"),
        "seed": tags.get("gp.seed"),
        "cost": metrics.get("cost"),
        "cached": tags.get("gp.cached"),
        "size": metrics.get("size"),
        "depth": metrics.get("depth"),
        "message": tags.get("gp.message", ""),
        "seed_fitness": metrics.get("seed_fitness"),
    }
    row = lineage.typed(raw)
    row["run_id"] = run.info.run_id
    return row


def _csv_rows(client: Any, search_run: Any) -> list[dict[str, Any]] | None:
    rid = search_run.info.run_id
    try:
        names = {a.path for a in client.list_artifacts(rid)}
    except Exception:  # noqa: BLE001 - no artifacts yet is normal for a running search
        return None
    if LINEAGE_CSV not in names:
        return None
    with tempfile.TemporaryDirectory(prefix="gpengine-readback-") as tmp, _quiet_downloads():
        path = client.download_artifacts(rid, LINEAGE_CSV, tmp)
        return lineage.read_csv(path)


@contextlib.contextmanager
def _quiet_downloads():
    """MLflow draws a progress bar on stderr for every download; `show` prints clean text."""
    old = os.environ.get(_PROGRESS_VAR)
    os.environ[_PROGRESS_VAR] = "false"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(_PROGRESS_VAR, None)
        else:
            os.environ[_PROGRESS_VAR] = old


def load_individuals(client: Any, search_run: Any, source: str = "auto") -> list[dict[str, Any]]:
    """Every individual of the search as lineage rows (sorted by id), with `run_id` where one exists.

    `source`: "runs" (child runs only), "csv" (artifact only) or "auto" (the
    CSV when present, completed with child runs; CSV values win for the fields
    both have, since tags are truncated to MLflow's limits and the CSV is not).
    """
    rows: dict[int, dict[str, Any]] = {}
    if source in ("auto", "csv"):
        for r in _csv_rows(client, search_run) or []:
            r["run_id"] = None
            rows[r["id"]] = r
    if source in ("auto", "runs"):
        for run in child_runs(client, search_run):
            if "gp.id" not in run.data.tags:
                continue
            r = row_of_run(run)
            base = rows.get(r["id"])
            if base is None:
                rows[r["id"]] = r
            else:
                base.update({k: v for k, v in r.items() if base.get(k) is None})
    return [rows[i] for i in sorted(rows)]


def ancestry(individuals: Iterable[dict[str, Any]], id_: int) -> list[dict[str, Any]]:
    """Rows of `id_` and all its ancestors (breadth first); [] if `id_` is unknown."""
    g = Genealogy(individuals)
    return [g.rows[i] for i in g.ancestors(int(id_))]


def search_summary(search_run: Any) -> dict[str, Any]:
    """The search run's identity, for display."""
    tags = search_run.data.tags
    return {
        "search_id": tags.get(TAG_SEARCH_ID, search_run.info.run_name),
        "run_id": search_run.info.run_id,
        "experiment_id": search_run.info.experiment_id,
        "evaluator": tags.get("gp.evaluator", ""),
        "status": search_run.info.status,
        "start_time": search_run.info.start_time,
        "end_time": search_run.info.end_time,
        "artifact_uri": search_run.info.artifact_uri,
        "end_reason": tags.get("gp.end_reason", ""),
        "child_runs": tags.get("gp.child_runs", ""),
    }
