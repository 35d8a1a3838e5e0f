"""`gpengine resume ID --set generations=N`: a search that ended by one of its limits goes on,
as if it had been started with the higher limit; nothing else about it may change."""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from click.testing import CliRunner

from gpengine.cli import main
from gpengine.config import LIMIT_KEYS, SEARCH_KEYS, build_config
from gpengine.errors import ConfigError, GpengineError
from gpengine.journal import read_journal
from gpengine.resume import limit_overrides
from gpengine.search import Search


def _config(runs: Path, *extra: str):
    return build_config(evaluator="symreg", seed=4, jobs=2, backend="sequential", overrides=[
        "population=8", "tracking=false", "points=8", f"runs_dir={runs}", *extra])


def _journal(runs: Path, sid: str = "s"):
    return [(i.id, str(i.expr), i.generation, i.operator, i.parent_ids, i.seed, i.result.fitness)
            for i in read_journal(runs / sid / "journal.jsonl")]


@pytest.mark.parametrize("shape", [
    ["mode=generational"], ["mode=steady_state"], ["mode=async"], ["mode=async", "fidelity=sh", "min_budget=0.25"],
    ["strategy=gaaf", "init=gaaf3"],
])
def test_more_generations_continue_as_the_search_started_with_them(tmp_path, shape):
    Search(*_config(tmp_path / "long", "generations=4", *shape), search_id="s").run()
    short = Search(*_config(tmp_path / "short", "generations=2", *shape), search_id="s").run()
    assert short.reason == "generations"
    assert len(_journal(tmp_path / "short")) < len(_journal(tmp_path / "long"))
    resumed = Search.resume("s", runs_dir=str(tmp_path / "short"), overrides={"generations": 4})
    assert resumed.run().reason == "generations"
    assert _journal(tmp_path / "short") == _journal(tmp_path / "long")


def test_lifting_an_evaluation_cap_runs_on_to_the_generations(tmp_path):
    capped = Search(*_config(tmp_path, "generations=3", "max_evaluations=12"), search_id="s").run()
    assert capped.reason == "evaluations"
    n = len(capped.individuals)
    out = Search.resume("s", runs_dir=str(tmp_path), overrides={"max_evaluations": None}).run()
    assert out.reason == "generations" and len(out.individuals) > n
    assert [r.id for r in read_journal(tmp_path / "s" / "journal.jsonl")] == list(range(len(out.individuals)))


def _finished_search(tmp_path) -> str:
    Search(*_config(tmp_path / "runs", "generations=2"), search_id="s").run()
    return "s"


def test_the_cli_raises_a_limit_and_a_later_resume_keeps_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sid = _finished_search(tmp_path)
    before = len(_journal(tmp_path / "runs"))
    res = CliRunner().invoke(main, ["resume", sid, "-q", "--set", "generations=3"])
    assert res.exit_code == 0, res.output
    grown = len(_journal(tmp_path / "runs"))
    assert grown > before
    assert json.loads((tmp_path / "runs" / sid / "limits.json").read_text())["generations"] == 3
    # search.json stays as the search was started; readers see the limit the resume set
    assert json.loads((tmp_path / "runs" / sid / "search.json").read_text())["config"]["generations"] == 2
    from gpengine.checkpoint import load_search_file

    assert load_search_file(tmp_path / "runs" / sid)[1].generations == 3
    again = CliRunner().invoke(main, ["resume", sid, "-q"])  # ended at the new limit: nothing more to do
    assert again.exit_code == 0, again.output
    assert len(_journal(tmp_path / "runs")) == grown
    assert f"it had already ended (generations); to go on: gpengine resume {sid} --set generations=6" in again.stderr


def test_a_resume_of_an_ended_search_says_how_to_make_it_go_on(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sid = _finished_search(tmp_path)
    res = CliRunner().invoke(main, ["resume", sid, "-q"])
    assert res.exit_code == 0, res.output
    assert res.stderr.strip() == (f"search {sid}: it had already ended (generations); to go on: "
                                  f"gpengine resume {sid} --set generations=4")


@pytest.mark.parametrize("args, says", [
    (["--set", "population=3"], "resume --set population: a resume may change only where the search stops"),
    (["--set", "generations=none"], "resume --set generations=none: generations needs a number"),
    (["--set", "max_time=-1"], "max_time must be a number >= 0 (got -1)"),
    (["--set", "max_time=1e400"], "max_time must be a finite number (got inf)"),  # TOML's 1e400 is inf
    (["--set", "max_cost=1e400"], "max_cost must be a finite number (got inf)"),
    (["--set", "target_fitness=-1e400"], "target_fitness must be a finite number (got -inf)"),
    (["--set", "generations"], "--set expects key=value, got 'generations'"),
])
def test_a_bad_limit_is_one_line_exit_2_and_changes_nothing(tmp_path, monkeypatch, args, says):
    monkeypatch.chdir(tmp_path)
    sid = _finished_search(tmp_path)
    folder = tmp_path / "runs" / sid
    saved = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    res = CliRunner().invoke(main, ["resume", sid, "-q", *args])
    assert res.exit_code == 2
    assert res.stderr.count("\n") == 1 and says in res.stderr, res.stderr
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == saved


@pytest.mark.parametrize("key", SEARCH_KEYS)
def test_only_the_stopping_limits_may_change_on_a_resume(key):
    value = "none" if key != "generations" else "7"
    if key in LIMIT_KEYS:
        assert limit_overrides([f"{key}={value}"]) == {key: None if value == "none" else 7}
    else:
        with pytest.raises(ConfigError, match=f"resume --set {key}: a resume may change only"):
            limit_overrides([f"{key}={value}"])


def test_a_damaged_limits_file_is_a_clear_error(tmp_path):
    sid = _finished_search(tmp_path)
    (tmp_path / "runs" / sid / "limits.json").write_text('{"population": 3}')
    with pytest.raises(GpengineError, match="limits.json is damaged: expected a table of generations"):
        Search.resume(sid, runs_dir=str(tmp_path / "runs"))


@pytest.mark.slow
def test_the_mlflow_run_goes_on_with_the_search_and_names_the_limit_it_moved(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    first = CliRunner().invoke(main, ["run", "-e", "symreg", "--seed", "2", "-q", "--set", "population=8",
                                      "--set", "generations=1", "--set", "points=8"])
    assert first.exit_code == 0, first.output
    (sid,) = [p.name for p in (tmp_path / "runs").iterdir() if (p / "search.json").exists()]
    res = CliRunner().invoke(main, ["resume", sid, "-q", "--set", "generations=3"])
    assert res.exit_code == 0, res.output
    from gpengine.tracking import store
    from gpengine.tracking.readback import find_search, load_individuals

    client = store.client(store.default_uri(tmp_path), create=False)
    run = client.get_run(find_search(client, sid).info.run_id)
    journal = read_journal(tmp_path / "runs" / sid / "journal.jsonl")
    assert sorted(int(r["id"]) for r in load_individuals(client, run)) == [i.id for i in journal]
    assert max(i.generation for i in journal) == 3
    assert run.info.status == "FINISHED"
    assert run.data.tags["gp.resume1.changed"] == "generations"


@given(key=st.one_of(st.sampled_from(SEARCH_KEYS),
                     st.text(alphabet=string.ascii_letters + "_.", min_size=1, max_size=20)
                     .filter(lambda k: "" not in k.split("."))),
       value=st.integers(min_value=0, max_value=10**6))
def test_any_key_but_a_limit_is_refused_and_a_limit_takes_its_value(key, value):
    if key in LIMIT_KEYS:
        assert limit_overrides([f"{key}={value}"]) == {key: value}
    else:
        with pytest.raises(ConfigError, match="a resume may change only where the search stops"):
            limit_overrides([f"{key}={value}"])
