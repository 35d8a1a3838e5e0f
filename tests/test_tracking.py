"""The MLflow tracker, checked by reading the store back with readback.py alone."""

from __future__ import annotations

import math
import os

import attrs
import numpy as np
import pytest

from gpengine.errors import ConfigError, GpengineError
from gpengine.tracking import MlflowTracker, estimate_individuals, readback, store
from gpengine.tracking.plots import activation_plotter, plot_activation
from gpengine.tracking.writer import TrackingError, Writer
from primitives import get_set
from tracking_stream import replay, synthetic_search


@pytest.fixture(scope="module")
def uri(tmp_path_factory):
    """One SQLite store for the module: creating the schema is the slow part."""
    return "sqlite:///" + str(tmp_path_factory.mktemp("store") / "mlflow.db")


@pytest.fixture(scope="module")
def client(uri):
    return store.client(uri)


def same_fitness(a, b):
    return (math.isnan(a) and math.isnan(b)) if (math.isnan(a) or math.isnan(b)) else a == b


def check_rows(rows, inds, fields=("generation", "operator", "parent_ids", "expr", "status", "cached", "seed")):
    by_id = {r["id"]: r for r in rows}
    for ind in inds:
        r = by_id[ind.id]
        assert same_fitness(r["fitness"], ind.result.fitness), (ind.id, r["fitness"], ind.result.fitness)
        want = {"generation": ind.generation, "operator": ind.operator, "parent_ids": ind.parent_ids,
                "expr": str(ind.expr), "status": ind.status, "cached": ind.cached, "seed": ind.seed}
        for f in fields:
            assert r[f] == want[f], (ind.id, f, r[f], want[f])


def ancestors(inds, id_):
    by_id = {i.id: i for i in inds}
    out, todo = set(), [id_]
    while todo:
        i = todo.pop()
        if i not in out:
            out.add(i)
            todo.extend(by_id[i].parent_ids)
    return out


def test_all_mode_logs_every_individual_with_lineage(uri, client):
    start, gens, end, inds = synthetic_search(30, search_id="s-all")
    tracker = MlflowTracker(uri, child_runs="all")
    replay(tracker, start, gens, end)

    run = readback.find_search(client, "s-all")
    tags = run.data.tags
    assert client.get_experiment(run.info.experiment_id).name == "gpengine/symreg"
    assert tags["gp.engine_version"] == "0.1.0" and tags["gp.evaluator_version"] == "1.2"
    assert run.info.run_name == "s-all" and run.info.status == "FINISHED"
    assert run.data.params["population"] == "8" and run.data.params["evaluator.noise"] == "0.0"
    assert len(run.data.params["long"]) <= 6000
    ds = run.inputs.dataset_inputs[0].dataset
    assert (ds.name, ds.digest) == ("synthetic-sin", "abc123")
    best_hist = client.get_metric_history(run.info.run_id, "best")
    assert [m.step for m in best_hist] == [0, 1, 2, 3]
    for name in ("mean", "median", "diversity", "evaluations", "failures", "cost"):
        assert len(client.get_metric_history(run.info.run_id, name)) == 4
    # what tracking itself cost, measured: the main thread's event time plus the writer's store calls
    spent, end_s = run.data.metrics["tracking_seconds"], run.data.metrics["tracking_end_seconds"]
    assert 0 < spent <= tracker.main_seconds + tracker.queue_seconds + 60
    assert 0 < end_s <= tracker.main_seconds  # the end's wait is main-thread time, counted once
    assert run.data.metrics["tracking_share"] == pytest.approx(min(1.0, spent / (run.data.metrics["elapsed"] + end_s)))
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == {
        "lineage.csv", "genealogy.html", "best_ancestry.svg", "fitness.png"}
    assert tags["gp.best_id"] == str(end.best.id)

    for source in ("runs", "csv", "auto"):
        rows = readback.load_individuals(client, run, source=source)
        assert [r["id"] for r in rows] == [i.id for i in inds]
        check_rows(rows, inds)

    children = {r.data.tags["gp.id"]: r for r in readback.child_runs(client, run)}
    assert len(children) == 30
    for ind in inds:
        child = children[str(ind.id)]
        assert child.info.run_name == f"g{ind.generation:03d}-i{ind.id:05d}-{ind.operator}"
        assert child.data.tags["mlflow.parentRunId"] == run.info.run_id
        assert child.data.tags["gp.parent_run_ids"].split(",") == [
            children[str(p)].info.run_id for p in ind.parent_ids] or not ind.parent_ids
        assert child.data.tags["gp.expr_hash"] == ind.expr_hash
        assert child.info.status == ("FINISHED" if ind.result.ok else "FAILED")
        for k in ("size", "depth", "cost", "budget", "generation"):
            assert k in child.data.metrics
        if ind.result.ok:
            hist = client.get_metric_history(child.info.run_id, "val_fitness")
            assert [(m.step, m.value) for m in hist] == list(enumerate(ind.result.curves["val_fitness"], start=1))
            assert child.data.metrics["mse"] == pytest.approx(ind.result.metrics["mse"])
        else:
            assert "fitness" not in child.data.metrics and child.data.tags["gp.message"] == "overflow in exp"

    assert [r["id"] for r in readback.ancestry(rows, end.best.id)][0] == end.best.id
    assert {r["id"] for r in readback.ancestry(rows, end.best.id)} == ancestors(inds, end.best.id)
    assert readback.find_search(client, run.info.run_id).info.run_id == run.info.run_id
    assert readback.find_search(client, "s-al").info.run_id == run.info.run_id  # unique prefix


def test_notable_mode_logs_only_notable_but_csv_has_everyone(uri, client):
    start, gens, end, inds = synthetic_search(30, search_id="s-notable")
    plot = activation_plotter(get_set("arith"))
    replay(MlflowTracker(uri, child_runs="notable", evaluator_plot=plot), start, gens, end)
    run = readback.find_search(client, "s-notable")
    children = readback.child_runs(client, run)
    want = ancestors(inds, end.best.id) | {h.id for h in end.hall_of_fame}
    want |= {g.stats.best_id for _, g in gens if g.stats.best_id >= 0}
    assert {int(r.data.tags["gp.id"]) for r in children} == want
    assert run.data.tags["gp.child_runs"] == "notable"
    rows = readback.load_individuals(client, run)
    assert len(rows) == 30
    check_rows(rows, inds)
    assert {r["id"] for r in rows if r["run_id"]} == want
    by_id = {int(r.data.tags["gp.id"]): r for r in children}
    best_child = by_id[end.best.id]
    assert [a.path for a in client.list_artifacts(best_child.info.run_id)] == [f"activation-{end.best.id}.png"]
    for ind in inds:  # every logged parent is linked by run id
        if ind.id in by_id and ind.parent_ids:
            linked = by_id[ind.id].data.tags["gp.parent_run_ids"].split(",")
            assert linked == [by_id[p].info.run_id if p in by_id else "-" for p in ind.parent_ids]


def test_auto_mode_decides_from_config_or_by_counting(uri, client):
    assert estimate_individuals({"population": 100, "generations": 20}) == 2100
    assert estimate_individuals({"search.population": 10, "max_evaluations": 50, "generations": 100}) == 50
    assert estimate_individuals({"seed": 3}) is None

    start, gens, end, inds = synthetic_search(30, search_id="s-auto-config")
    replay(MlflowTracker(uri, child_runs="auto", notable_threshold=20), start, gens, end)
    run = readback.find_search(client, "s-auto-config")
    assert run.data.tags["gp.child_runs"] == "notable"  # 8 * (4 + 1) = 40 > 20

    start, gens, end, inds = synthetic_search(30, search_id="s-auto-count")
    start = attrs.evolve(start, config={"seed": 7})
    replay(MlflowTracker(uri, child_runs="auto", notable_threshold=12), start, gens, end)
    run = readback.find_search(client, "s-auto-count")
    logged = {int(r.data.tags["gp.id"]) for r in readback.child_runs(client, run)}
    assert set(range(12)) <= logged and len(logged) < 30
    assert ancestors(inds, end.best.id) <= logged
    assert run.data.tags["gp.child_runs"] == "notable"
    assert len(readback.load_individuals(client, run)) == 30


@pytest.mark.parametrize("style", ["everything", "journal"])
def test_resume_with_same_search_id_creates_no_duplicates(uri, client, style):
    sid = f"s-resume-{style}"
    start, gens, end, inds = synthetic_search(30, search_id=sid)
    first = MlflowTracker(uri, child_runs="all")
    replay(first, start, gens, end, upto=2)  # "crash" after two generations
    first._writer.flush()
    first._writer.close()

    second = MlflowTracker(uri, child_runs="all")
    if style == "everything":  # a loop that re-emits every event
        replay(second, attrs.evolve(start, resumed=True), gens, end)
    else:  # as gpengine.search does: journaled individuals replayed, then the loop goes on
        second.on_search_start(attrs.evolve(start, resumed=True))
        for events, _ in gens[:2]:
            for e in events:
                second.on_individual(e)
        for events, gen_end in gens[2:]:
            for e in events:
                second.on_individual(e)
            second.on_generation(gen_end)
        second.on_search_end(end)
    assert [s["generation"] if isinstance(s, dict) else s.generation for s in second.stats] == [0, 1, 2, 3]

    runs = client.search_runs([readback.find_search(client, sid).info.experiment_id],
                              f"tags.`gp.search_id` = '{sid}' and tags.`gp.kind` = 'search'")
    assert len(runs) == 1
    run = runs[0]
    ids = [int(r.data.tags["gp.id"]) for r in readback.child_runs(client, run)]
    assert sorted(ids) == list(range(30)), "duplicates or gaps after resume"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "best")] == [0, 1, 2, 3]
    assert run.data.tags["gp.resumes"] == "1" and run.info.status == "FINISHED"
    check_rows(readback.load_individuals(client, run), inds)


def test_a_child_run_half_written_when_the_search_was_killed_is_written_whole_on_resume(uri, client):
    sid = "s-resume-half-written"
    start, gens, end, inds = synthetic_search(30, search_id=sid)
    first = MlflowTracker(uri, child_runs="all")
    replay(first, start, gens, end, upto=2)
    first._writer.flush()
    first._writer.close()
    run = readback.find_search(client, sid)
    (victim,) = [r for r in readback.child_runs(client, run) if r.data.tags["gp.id"] == "3"]
    client.delete_run(victim.info.run_id)  # kill -9 between create_run and its metrics: tags, no metrics, RUNNING
    half = client.create_run(victim.info.experiment_id, tags=victim.data.tags, run_name=victim.info.run_name)

    second = MlflowTracker(uri, child_runs="all")
    second.on_search_start(attrs.evolve(start, resumed=True))
    for events, gen_end in gens:
        for e in events:
            second.on_individual(e)
        if gen_end.stats.generation >= 2:
            second.on_generation(gen_end)
    second.on_search_end(end)
    children = readback.child_runs(client, run)
    assert sorted(int(r.data.tags["gp.id"]) for r in children) == list(range(30))
    assert all(r.info.status in ("FINISHED", "FAILED") for r in children)
    (three,) = [r for r in children if r.data.tags["gp.id"] == "3"]
    assert three.info.run_id != half.info.run_id and "generation" in three.data.metrics
    check_rows(readback.load_individuals(client, run, source="runs"), inds)


def test_store_resolution_and_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    default = store.resolve_uri()
    assert default == "sqlite:///" + str(tmp_path.resolve() / "runs" / "mlflow.db")
    assert store.artifact_root(default) == tmp_path.resolve() / "runs" / "artifacts"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    assert store.resolve_uri() == "http://127.0.0.1:9"
    assert store.resolve_uri("sqlite:////x/y.db") == "sqlite:////x/y.db"
    assert store.artifact_location("http://127.0.0.1:9", "gpengine/symreg") is None
    store.prepare(default)
    assert (tmp_path / "runs" / "artifacts").is_dir()
    with pytest.raises(ConfigError):
        MlflowTracker(child_runs="some")
    if os.geteuid() != 0:  # root writes anywhere: the check cannot fail for it
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(GpengineError, match="not writable|cannot create"):
            store.prepare("sqlite:///" + str(locked / "runs" / "mlflow.db"))
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(GpengineError, match="cannot create tracking folder"):
        store.prepare("sqlite:///" + str(blocker / "runs" / "mlflow.db"))


def test_metric_and_curve_names_mlflow_refuses_are_logged_under_names_it_accepts(uri, client):
    """A plugin's metric `acc@1` must not stop the search at its end (nor every resume after it),
    nor a resolved setting `dev@ice` stop it with a traceback as it starts."""
    from gpengine.events import IndividualEvaluated

    start, gens, end, inds = synthetic_search(10, search_id="s-names")
    start = attrs.evolve(start, evaluator_settings={"dev@ice": "cpu", "points": 7})
    odd_metrics = {"acc@1": 0.5, "top-1 (%)": 50.0, "/abs": 1.0, "fine/name:ok": 2.0}
    odd_curves = {"loss/../x": (3.0, 2.0)}

    def odd(ind):
        if not ind.result.ok:
            return ind
        return attrs.evolve(ind, result=attrs.evolve(ind.result, metrics=odd_metrics, curves=odd_curves))

    gens = [([IndividualEvaluated(odd(e.individual)) for e in events], gen_end) for events, gen_end in gens]
    tracker = MlflowTracker(uri, child_runs="all")
    replay(tracker, start, gens, end)  # raised TrackingError (MLflow: "Invalid value \"acc@1\"") before

    run = readback.find_search(client, "s-names")
    assert run.info.status == "FINISHED"
    assert (run.data.params["evaluator.resolved.dev_ice"], run.data.params["evaluator.resolved.points"]) == ("cpu", "7")
    child = next(r for r in readback.child_runs(client, run) if r.data.tags["gp.status"] == "ok")
    m = child.data.metrics
    assert (m["acc_1"], m["top-1 ___"], m["_abs"], m["fine/name:ok"]) == (0.5, 50.0, 1.0, 2.0)
    hist = client.get_metric_history(child.info.run_id, "loss_.._x")
    assert [(h.step, h.value) for h in hist] == [(1, 3.0), (2, 2.0)]


def test_writer_reports_failures_in_the_search_thread():
    w = Writer(retries=1, backoff=0.0, grace=0.3)

    def boom():
        raise RuntimeError("store is gone")

    w.submit(boom, what="child run of individual 3")
    with pytest.raises(TrackingError, match="individual 3.*store is gone"):
        w.flush()
    w.close()


def test_writer_rides_out_an_outage_and_catches_up(capsys):
    w = Writer(retries=1, backoff=0.01, max_pause=0.05)
    calls, done = [], []

    def flaky(i):
        calls.append(i)
        if len(calls) <= 6:  # the store is down for the first six attempts
            raise ConnectionError("connection refused")
        done.append(i)

    for i in range(3):
        w.submit(flaky, i, what=f"job {i}")
    w.check()  # an outage is not an error while the search runs
    w.flush()
    w.close()
    assert done == [0, 1, 2]
    err = capsys.readouterr().err
    assert "tracking store unreachable" in err and "reachable again" in err


def test_a_write_the_store_refuses_is_skipped_with_one_line_not_retried_as_an_outage(uri, client, capsys):
    """A name or value MLflow refuses would be refused on every retry and every resume: skip that write."""
    from mlflow.entities import Metric

    from gpengine.tracking.mlflow_tracker import _refused_by_store

    run_id = client.create_run(client.get_experiment_by_name("Default").experiment_id).info.run_id
    w = Writer(retries=1, backoff=0.01, max_pause=0.05, grace=5.0, refused=_refused_by_store)
    calls = []

    def refused_batch():
        calls.append("bad")
        client.log_batch(run_id, metrics=[Metric("a" * 600, 1.0, 0, 0)])  # a key past MLflow's length limit

    w.submit(refused_batch, what="child run of individual 7")
    w.submit(lambda: client.log_batch(run_id, metrics=[Metric("fine", 2.0, 0, 0)]), what="next")
    w.flush()  # no TrackingError: the search ends normally
    w.close()
    assert calls == ["bad"] and w.refused_writes == 1 and w.outage is None
    assert client.get_run(run_id).data.metrics == {"fine": 2.0}  # the writes after it went on
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        "gpengine: the tracking store refused a write (child run of individual 7), skipped: MlflowException")
    assert "unreachable" not in err[0]


def test_the_fitness_plot_keeps_best_and_median_in_view_when_one_mean_runs_off(tmp_path):
    from gpengine.tracking.plots import fitness_view, plot_fitness

    best, median = np.array([-0.3, -0.01, -1e-4]), np.array([-0.9, -0.5, -0.2])
    lo, hi, mean_shown = fitness_view(best, median, np.array([-8e4, -3.0, -1.1]))
    assert not mean_shown and -0.99 < lo < -0.9 and 0 < hi < 0.05  # the -MSE curves, not the outlier's scale
    lo, hi, mean_shown = fitness_view(best, median, np.array([-1.2, -0.7, -0.3]))
    assert mean_shown and lo < -1.2 and hi > -1e-4  # a mean near the rest is in view too
    assert fitness_view(np.array([np.nan]), np.array([np.nan]), np.array([np.nan])) is None
    stats = [{"generation": g, "best": b, "mean": m, "median": d}
             for g, (b, m, d) in enumerate(zip(best, [-8e4, -3.0, -1.1], median))]
    assert plot_fitness(stats, tmp_path / "f.png").stat().st_size > 1000


def test_activation_plot(tmp_path):
    from gpengine.expr_text import parse

    pset = get_set("arith")
    path = plot_activation(parse("x * sin(x) + exp(x)", pset), pset, tmp_path / "a.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_activation_plot_says_when_it_shows_learnable_parameters_at_their_start(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from gpengine.expr_text import parse

    labels = []
    monkeypatch.setattr(Figure, "savefig", lambda fig, *a, **k: labels.append(fig.axes[0].get_xlabel()))
    gaaf = get_set("gaaf")
    plot_activation(parse("shift(shift(x)) * sigmoid(x)", gaaf), gaaf, tmp_path / "b.png")
    plot_activation(parse("sin(x) + x", gaaf), gaaf, tmp_path / "c.png")
    plot_activation(parse("ratio(atan(x), blend(x, x))", gaaf), gaaf, tmp_path / "d.png")
    assert labels == ["x   (2 learnable parameters at their initial values)", "x",
                      "x   (1 learnable parameter at its initial value)"]


@pytest.mark.parametrize("child_runs", ["all", "notable"])
def test_real_symreg_search_is_rebuilt_from_mlflow_alone(uri, child_runs):
    """End to end: the engine's own records equal what MLflow holds, read with a fresh client."""
    from gpengine.config import build_config
    from gpengine.search import Search

    cfg, opts = build_config(evaluator="symreg", overrides=["population=12", "generations=3", "tracking=false"],
                             seed=11)
    outcome = Search(cfg, opts, listeners=[MlflowTracker(uri, child_runs=child_runs)]).run()
    assert len(outcome.individuals) >= 30

    fresh = store.client(uri, create=False)  # nothing shared with the tracker
    run = readback.find_search(fresh, outcome.search_id)
    assert run.data.params["population"] == "12"
    sources = ("runs", "csv") if child_runs == "all" else ("csv",)
    for source in sources:
        rows = {r["id"]: r for r in readback.load_individuals(fresh, run, source=source)}
        assert sorted(rows) == [i.id for i in outcome.individuals], source
        for ind in outcome.individuals:
            r = rows[ind.id]
            assert (r["parent_ids"], r["operator"], r["status"], r["generation"]) == (
                ind.parent_ids, ind.operator, ind.status, ind.generation), (source, ind.id)
            assert same_fitness(r["fitness"], ind.result.fitness), (source, ind.id)
    stats = fresh.get_metric_history(run.info.run_id, "best")
    assert [m.value for m in stats] == pytest.approx([s.best for s in outcome.history], nan_ok=True)
    if child_runs == "notable":
        logged = {int(r.data.tags["gp.id"]) for r in readback.child_runs(fresh, run)}
        assert ancestors(outcome.individuals, outcome.best.id) <= logged < {i.id for i in outcome.individuals}


def test_auto_mode_switches_when_the_store_falls_behind(uri, client):
    import threading

    start, gens, end, inds = synthetic_search(30, search_id="s-backlog")
    tracker = MlflowTracker(uri, child_runs="auto", max_backlog=1)
    tracker.on_search_start(start)
    gate = threading.Event()
    tracker._writer.submit(gate.wait)  # the store is "slow": nothing is written until the gate opens
    for events, gen_end in gens:
        for e in events:
            tracker.on_individual(e)
            if e.individual.id == 1:
                assert tracker.mode == "notable"
                gate.set()
        tracker.on_generation(gen_end)
    tracker.on_search_end(end)
    run = readback.find_search(client, "s-backlog")
    assert run.data.tags["gp.child_runs"] == "notable" and "waiting" in run.data.tags["gp.child_runs_reason"]
    logged = {int(r.data.tags["gp.id"]) for r in readback.child_runs(client, run)}
    assert 0 in logged and ancestors(inds, end.best.id) <= logged and len(logged) < 30
    assert len(readback.load_individuals(client, run)) == 30


def test_check_uri_refuses_a_file_store_unless_mlflow_allows_it(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    for uri in (str(tmp_path / "mlruns"), "file://" + str(tmp_path / "mlruns")):
        with pytest.raises(GpengineError, match="file store") as err:
            store.check_uri(uri)
        assert "\n" not in str(err.value) and "sqlite:///" in str(err.value)
    for ok in ("sqlite:///" + str(tmp_path / "a.db"), "http://127.0.0.1:5000", "postgresql+psycopg2://u@h/db"):
        assert store.check_uri(ok) == ok
    with pytest.raises(GpengineError, match="unknown scheme 'nosuch'"):
        store.check_uri("nosuch://x")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # the user's explicit opt-in to MLflow's old store
    assert store.check_uri(str(tmp_path / "mlruns")) == str(tmp_path / "mlruns")
    assert not (tmp_path / "mlruns").exists()  # a check writes nothing


def test_evaluator_resolved_settings_go_to_mlflow_params_and_search_json_and_a_resume_records_changes(
        uri, client, tmp_path, monkeypatch):
    import json

    from gpengine.config import build_config
    from gpengine.search import Search
    from evaluators.symreg import SymbolicRegression

    cfg, opts = build_config(evaluator="symreg", overrides=["population=6", "generations=1", "points=7"], seed=3,
                             runs_dir=str(tmp_path / "runs"))
    first = Search(cfg, opts, listeners=[MlflowTracker(uri, child_runs="notable")])
    first.run()
    saved = json.loads((tmp_path / "runs" / first.search_id / "search.json").read_text())
    # what the user set stays apart from what the evaluator ran with (defaults included)
    assert saved["evaluator_options"] == {"points": 7}
    assert saved["evaluator_resolved"] == {"target": "x**4+x**3+x**2+x", "data": None, "points": 7, "low": -1.0,
                                           "high": 1.0, "metric": "neg_mse"}
    params = readback.find_search(client, first.search_id).data.params
    assert params["evaluator.points"] == "7"
    assert (params["evaluator.resolved.points"], params["evaluator.resolved.high"],
            params["evaluator.resolved.metric"], params["evaluator.resolved.data"]) == ("7", "1.0", "neg_mse", "None")
    from gpengine import saved_search  # read back from MLflow alone, the record is not taken for options

    assert saved_search.load(first.search_id, runs_dir=tmp_path / "elsewhere", tracking_uri=uri).evaluator_options == {
        "points": 7}

    # the code resumed with resolves differently (a profile redefined): params keep the original, a tag says so
    monkeypatch.setattr(SymbolicRegression, "resolved_settings",
                        lambda self: {**attrs.asdict(self.options), "high": 2.0, "grid": [1, 2]})
    Search.resume(first.search_id, runs_dir=str(tmp_path / "runs"),
                  listeners=[MlflowTracker(uri, child_runs="notable")], overrides={"generations": 2}).run()
    run = readback.find_search(client, first.search_id)
    params = run.data.params
    assert params["evaluator.resolved.high"] == "1.0" and params["evaluator.resolved.grid"] == "[1, 2]"
    assert "evaluator.resolved.high" in run.data.tags["gp.resume1.changed"].split(",")


def test_notable_mode_bounds_the_ancestors_it_writes_and_counts_the_end_once(uri, client):
    start, gens, end, inds = synthetic_search(60, search_id="s-capped")
    line = ancestors(inds, end.best.id) - {end.best.id}
    assert len(line) > 5  # a lineage longer than the cap below
    tracker = MlflowTracker(uri, child_runs="notable", max_ancestors=5)
    replay(tracker, start, gens, end)
    run = readback.find_search(client, "s-capped")
    got = {int(r.data.tags["gp.id"]) for r in readback.child_runs(client, run)}
    others = {h.id for h in end.hall_of_fame} | {g.stats.best_id for _, g in gens if g.stats.best_id >= 0}
    others |= {end.best.id}
    assert got - others <= line and len(got & (line - others)) <= 5 and others <= got
    assert run.data.tags["gp.notable_ancestors"] == f"5 nearest of {len(line)} (all in lineage.csv)"
    rows = readback.load_individuals(client, run, source="csv")
    assert [r["id"] for r in rows] == [i.id for i in inds]  # everyone is still in the lineage table
    # the writer's time at the end is inside the end's wait: counted once, never above the wall time
    m = run.data.metrics
    assert m["tracking_seconds"] <= m["elapsed"] + m["tracking_end_seconds"] + 1e-6
