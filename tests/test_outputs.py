"""A search started from Python writes what `gpengine run` writes: evaluator search_defaults and MLflow."""

from __future__ import annotations

import pytest

from gpengine.config import build_config
from gpengine.search import Search


def test_build_config_applies_the_evaluators_search_defaults_like_the_cli():
    """The library used to give bnn-cifar population 100, 20 generations, generational, no time limit."""
    from gpengine.plugins import load_evaluator_class

    suggested = load_evaluator_class("bnn-cifar").search_defaults
    cfg, _ = build_config(evaluator="bnn-cifar")
    assert suggested  # otherwise this test shows nothing
    for key, value in suggested.items():
        assert getattr(cfg, key) == value, key
    assert (cfg.population, cfg.generations, cfg.mode, cfg.max_time, cfg.jobs) == (12, 3, "steady_state", 3600.0, 2)
    cfg, _ = build_config(evaluator="bnn-cifar", overrides=["population=20"], jobs=1)  # the user's keys win
    assert (cfg.population, cfg.jobs, cfg.generations) == (20, 1, 3)


def test_a_table_in_search_defaults_merges_with_a_set_entry():
    cfg, _ = build_config(evaluator="symreg", overrides=["mutation_weights.point=3"],
                          evaluator_defaults={"mutation_weights": {"hoist": 2.0}, "population": 7})
    assert cfg.population == 7
    assert (cfg.mutation_weights["point"], cfg.mutation_weights["hoist"], cfg.mutation_weights["shrink"]) == (3, 2, 0.5)


@pytest.fixture
def uri(tmp_path):
    return "sqlite:///" + str(tmp_path / "mlflow.db")


def _runs_of(uri):
    from gpengine.tracking import readback, store

    client = store.client(uri, create=False)
    exps = readback.experiment_ids(client)
    return client, readback.search_runs(client, exps, f"tags.`{readback.TAG_KIND}` = '{readback.KIND_SEARCH}'")


def test_a_library_search_is_tracked_in_mlflow_when_config_says_so(uri):
    cfg, opts = build_config(evaluator="symreg", overrides=["population=6", "generations=1", "child_runs=notable"],
                             tracking_uri=uri, seed=2)
    assert cfg.tracking
    outcome = Search(cfg, opts).run()
    client, runs = _runs_of(uri)
    from gpengine.tracking.readback import TAG_SEARCH_ID

    assert [r.data.tags[TAG_SEARCH_ID] for r in runs] == [outcome.search_id]
    best = [m.value for m in client.get_metric_history(runs[0].info.run_id, "best")]
    assert best == [s.best for s in outcome.history]


def test_an_own_tracker_replaces_the_default_and_tracking_false_writes_nothing(uri, tmp_path):
    from gpengine.tracking import MlflowTracker

    cfg, opts = build_config(evaluator="symreg", overrides=["population=6", "generations=1"], seed=2,
                             tracking_uri=str(tmp_path / "unused"))
    Search(cfg, opts, listeners=[MlflowTracker(uri, child_runs="notable")]).run()
    assert len(_runs_of(uri)[1]) == 1  # one run, not one per tracker
    assert not (tmp_path / "unused").exists()
    cfg, opts = build_config(evaluator="symreg", overrides=["population=6", "generations=1", "tracking=false"],
                             tracking_uri=uri, seed=3)
    Search(cfg, opts).run()
    assert len(_runs_of(uri)[1]) == 1
