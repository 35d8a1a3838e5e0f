"""`gpengine report`: a self-contained page with the best, the progress, the genealogy and the command."""

from __future__ import annotations

import html
import math
import re
import shlex
import shutil

import pytest
from click.testing import CliRunner

from gpengine import saved_search
from gpengine.cli import main
from gpengine.config import build_config
from gpengine.expr_text import parse
from gpengine.report import best_rows, compute_curve, replicate_stats, reproduce
from primitives import get_set
from test_export import write_search

EXTERNAL = re.compile(r"""(src|href)\s*=\s*["']?\s*(https?:)?//|@import|url\(|<script|<link""", re.I)


def assert_offline(text: str) -> None:
    assert not EXTERNAL.search(text), EXTERNAL.search(text).group(0)
    assert "data:image/png;base64," in text


def test_report_of_a_local_search(tmp_path):
    exprs = [("sin(x)", 40.0), ("blend(x, tan(x))", 55.5), ("log(x)", math.nan), ("scale(x) + erf(x)", 51.0),
             ("relu(x)", 45.0), ("gate(x, x)", 52.0)]
    write_search(tmp_path / "runs", "s-rep", exprs, options={"profile": "smoke", "clip": 1.1}, generations=3)
    res = CliRunner().invoke(main, ["report", "s-rep", "--out", "r.html"])
    assert res.exit_code == 0, res.output
    text = (tmp_path / "r.html").read_text()
    assert_offline(text)
    assert html.escape("blend(x, tan(x))") in text and "Genealogy of the best" in text and "<svg" in text
    # every key that differs from what `gpengine run --evaluator bnn-cifar` alone configures (its
    # search_defaults included: generations=3 is one of them, generic mode and jobs are not)
    command = "gpengine run --evaluator bnn-cifar --seed 3 --set population=2 --set mode=generational " \
              "--set elitism=0 --set init_max_depth=4 --set max_depth=8 --set max_size=40 --set primitives=gaaf " \
              "--set jobs=1 --set clip=1.1 --set profile=smoke"
    assert html.escape(command) in text
    assert "\\beta_{0} x + \\left(1 - \\beta_{0}\\right) \\tan\\left(x\\right)" in html.unescape(text)
    assert "logged" not in res.output  # no MLflow store here: nothing logged, nothing created
    assert not (tmp_path / "runs" / "mlflow.db").exists()


def test_reproduce_command_rebuilds_the_same_configuration():
    cfg, opts = build_config(evaluator="symreg", seed=5, overrides=[
        "population=12", "selection=nsga2", "mutation_weights.hoist=2.0", "target=x**2 + 1", "points=7",
        "max_time=60.5"])
    import attrs

    config = attrs.asdict(cfg)
    command, toml = reproduce(config, opts)
    args = shlex.split(command)
    assert args[:6] == ["gpengine", "run", "--evaluator", "symreg", "--seed", "5"]
    sets = [args[i + 1] for i, a in enumerate(args) if a == "--set"]
    again, opts2 = build_config(evaluator="symreg", seed=5, overrides=sets)
    assert again == cfg and opts2 == opts
    import tomllib

    data = tomllib.loads(toml)
    assert data["evaluator"] == {"name": "symreg", "points": 7, "target": "x**2 + 1"}
    assert data["mutation_weights"]["hoist"] == 2.0 and data["population"] == 12


def reeval_rows():
    pset = get_set("arith")
    rows = []
    for i, (op, fit, seed_fit) in enumerate([("init-grow", 1.0, None), ("reeval", 2.0, 3.0), ("reeval", 2.0, 2.0),
                                            ("init-grow", 0.5, None)]):
        expr = parse("sin(x)" if i < 3 else "x", pset)
        metrics = {} if seed_fit is None else {"seed_fitness": seed_fit, "replicates": i + 1}
        rows.append({"id": i, "generation": i // 2, "operator": op, "parent_ids": (i - 1,) if op == "reeval" else (),
                     "expr": str(expr), "expr_hash": str(expr), "fingerprint": str(expr), "status": "ok",
                     "fitness": fit, "budget": 1.0, "cost": 2.0, "cached": False, "metrics": metrics})
    return rows


def test_replicate_mean_and_spread_use_single_seed_values():
    stats = replicate_stats(reeval_rows())
    s = stats[("sin(x)", 1.0)]
    assert s["n"] == 3 and s["mean"] == pytest.approx(2.0) and s["std"] == pytest.approx(1.0) and s["cost"] == 6.0
    assert math.isnan(stats[("x", 1.0)]["std"])
    assert [r["id"] for r in best_rows(reeval_rows())] == [2, 3]  # sin(x) by its mean over all three seeds


def test_a_candidate_stands_by_its_full_budget_score_and_full_budgets_rank_first():
    def row(i, expr, fitness, budget, operator="init-grow"):
        return {"id": i, "operator": operator, "expr": expr, "expr_hash": expr, "fingerprint": expr, "status": "ok",
                "fitness": fitness, "budget": budget, "size": 1}
    rows = [row(0, "sin(x)", 0.9, 1 / 3), row(1, "x", 0.6, 1 / 3), row(2, "atan(x)", 0.95, 1 / 3),
            row(3, "sin(x)", 0.5, 1.0, "promote"), row(4, "x", 0.7, 1.0, "promote")]
    # atan(x) was never promoted: its short-run 0.95 ranks under every full-budget score; sin(x)'s lucky
    # short run does not stand for it once its full score (0.5) is known
    assert [(r["id"], r["fitness"]) for r in best_rows(rows)] == [(4, 0.7), (3, 0.5), (2, 0.95)]


def test_exact_fits_tied_within_rounding_noise_rank_the_smaller_first_as_the_search_does():
    rows = [{"id": 0, "operator": "crossover", "expr": "big", "fingerprint": "a", "status": "ok",
             "fitness": -3.85e-33, "budget": 1.0, "size": 9},
            {"id": 1, "operator": "crossover", "expr": "small", "fingerprint": "b", "status": "ok",
             "fitness": -1.39e-32, "budget": 1.0, "size": 5}]
    assert [r["expr"] for r in best_rows(rows)] == ["small", "big"]  # the hall of fame's order


def test_compute_curve():
    rows = reeval_rows()
    xs, ys = compute_curve(rows)
    assert xs == [2.0, 4.0, 6.0, 8.0] and ys == [1.0, 2.0, 2.0, 2.0]


def test_a_cached_copy_is_neither_a_second_seed_nor_spent_again():
    # What a bnn-cifar search logs: #9 trained, #10 the same expression answered from the cache
    # with #9's seed, result and cost. Counting it gave "(n) 2" for one seed and twice the seconds.
    base = {"generation": 0, "operator": "init-grow", "parent_ids": (), "expr": "minzero(x)",
            "expr_hash": "h", "status": "ok", "fitness": 23.7, "budget": 1.0, "seed": 7, "metrics": {}}
    rows = [dict(base, id=9, cost=14.0, cached=False), dict(base, id=10, cost=14.0, cached=True),
            dict(base, id=11, cost=14.0, cached=True, seed=8, fitness=25.7)]  # a store hit, another seed
    s = replicate_stats(rows)[("h", 1.0)]
    assert s["n"] == 2 and s["mean"] == pytest.approx(24.7) and s["cost"] == 14.0
    xs, ys = compute_curve(rows)
    assert xs == [14.0, 14.0, 14.0] and ys == [23.7, 23.7, 25.7]


def test_diversity_plot_ticks_whole_generations(tmp_path, monkeypatch):
    # Three generations drew ticks at 0.25, 0.5, 0.75, ... on the report's diversity plot.
    from matplotlib.figure import Figure

    from gpengine.report import pictures

    saved_figures = []
    original = Figure.savefig

    def keep(fig, *args, **kwargs):
        saved_figures.append(fig)
        return original(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    gens = [{"generation": g, "best": 1.0, "mean": 0.5, "median": 0.5, "diversity": d}
            for g, d in enumerate([0.75, 0.5, 0.25])]
    saved = type("Saved", (), {"primitives": "arith", "rows": []})()
    pics = pictures(saved, [], gens, tmp_path)
    assert "diversity" in pics and "fitness" in pics
    for fig in saved_figures:
        ax = fig.axes[0]
        lo, hi = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
        assert ticks and all(float(t).is_integer() for t in ticks), (ax.get_title(), ticks)


@pytest.mark.slow
def test_report_from_mlflow_alone_is_logged_to_the_run(tmp_path):
    runner = CliRunner()
    res = runner.invoke(main, ["run", "-e", "symreg", "--set", "population=10", "--set", "generations=2",
                               "--set", 'guesses=["x", "sin(x)"]', "--seed", "4", "-q"])
    assert res.exit_code == 0, res.output
    search_id = re.search(r"search (\S+):", res.output).group(1)
    best_expr = re.search(r"best:\n\s+\S+\s+id \d+\s+(.+)", res.output).group(1).strip()
    shutil.move(tmp_path / "runs" / search_id, tmp_path / "elsewhere")  # only MLflow knows it now
    res = runner.invoke(main, ["report", search_id, "--out", "m.html"])
    assert res.exit_code == 0, res.output
    assert "logged as artifact report.html" in res.output
    text = (tmp_path / "m.html").read_text()
    assert_offline(text)
    assert html.escape(best_expr) in text
    assert "gpengine run --evaluator symreg --seed 4 --set population=10 --set generations=2" in text
    # the command rebuilds the very search, lists included (a tuple logged as "('x', ...)" did not parse)
    saved = saved_search.load(search_id, runs_dir=tmp_path / "runs")
    command, toml = reproduce(saved.config, saved.evaluator_options)
    args = shlex.split(command)
    sets = [args[i + 1] for i, a in enumerate(args) if a == "--set"]
    again, _ = build_config(evaluator="symreg", seed=4, overrides=sets)
    assert again.guesses == ("x", "sin(x)") and (again.population, again.generations) == (10, 2)
    import tomllib

    assert tomllib.loads(toml)["guesses"] == ["x", "sin(x)"]
    from gpengine.tracking import readback, store

    client = store.client(store.resolve_uri(None))
    run = readback.find_search(client, search_id)
    assert "report.html" in {a.path for a in client.list_artifacts(run.info.run_id)}


def test_replicate_spread_read_from_mlflow_alone_is_the_one_the_folder_gives(tmp_path):
    """With child_runs=notable most re-evaluations have no child run, only a lineage CSV row: the
    row carries its seed's own score, so a remote report's n, mean and spread are the search's."""
    res = CliRunner().invoke(main, ["run", "-e", "symreg", "--set", "population=12", "--set", "generations=3",
                                    "--set", "child_runs=notable", "--set", "replicates=3", "--set", "reeval_top=2",
                                    "--seed", "2", "-q"])
    assert res.exit_code == 0, res.output
    search_id = re.search(r"search (\S+):", res.output).group(1)
    local = replicate_stats(saved_search.load(search_id, runs_dir=tmp_path / "runs", want_run=False).rows)
    remote = replicate_stats(saved_search.load(search_id, runs_dir=tmp_path / "nowhere").rows)
    spread = {k: v for k, v in local.items() if v["n"] == 3}
    assert spread  # the check needs candidates with three seeds
    for key, stats in spread.items():
        assert remote[key] == pytest.approx(stats, nan_ok=True), key


def test_unknown_search_is_one_line(tmp_path):
    res = CliRunner().invoke(main, ["report", "nothing-here"])
    assert res.exit_code == 2 and "no search" in res.output


def test_unknown_search_names_the_runs_folder_it_looked_in(tmp_path):
    for command in ("report", "export"):
        res = CliRunner().invoke(main, [command, "s-x", "--runs-dir", "elsewhere"])
        assert res.exit_code == 2 and res.output.strip().splitlines() == [
            "error: no search 's-x': neither elsewhere/s-x/search.json nor a tracking store at "
            f"{tmp_path.resolve() / 'runs' / 'mlflow.db'}"], res.output


def _config_of_command(command: str):
    """The configuration `gpengine run` builds from `command`: parsed by the CLI's own click command."""
    from gpengine.cli import run as run_command

    args = shlex.split(command)
    assert args[:2] == ["gpengine", "run"]
    p = run_command.make_context("run", args[2:]).params
    return build_config(evaluator=p["evaluator"], config_file=p["config_file"], overrides=p["overrides"],
                        seed=p["seed"], jobs=p["jobs"], backend=p["backend"], scheduler=p["scheduler"],
                        tracking_uri=p["tracking_uri"], tracking=not p["no_tracking"])


@pytest.mark.parametrize("overrides", [
    ["jobs=1", "mode=generational", "max_time=60.5"],  # equal to SearchConfig's defaults, not the evaluator's
    ["jobs=3", "mutation_weights.point=2", "population=5"],
    [],
])
def test_reproduce_keeps_keys_equal_to_generic_defaults_when_the_evaluator_suggests_others(monkeypatch, overrides):
    """bnn-cifar suggests jobs=2 and steady state: a run made with --jobs 1 used to reproduce with 2."""
    import attrs

    from gpengine.plugins import load_evaluator_class

    monkeypatch.setattr(load_evaluator_class("symreg"), "search_defaults",
                        {"jobs": 2, "mode": "steady_state", "max_time": 3600.0, "mutation_weights": {"hoist": 2.0}})
    cfg, opts = build_config(evaluator="symreg", seed=4, overrides=[*overrides, "points=9"])
    command, _ = reproduce(attrs.asdict(cfg), opts)
    again, opts2 = _config_of_command(command)
    assert again == cfg and opts2 == opts
    if "jobs=1" in overrides:
        assert "jobs=1" in command and "mode=generational" in command


def test_reproduce_of_a_bnn_cifar_search_run_with_one_job():
    import attrs

    cfg, opts = build_config(evaluator="bnn-cifar", seed=1, jobs=1, overrides=["profile=smoke"])
    command, _ = reproduce(attrs.asdict(cfg), opts)
    again, opts2 = _config_of_command(command)
    assert again.jobs == 1 and again == cfg and opts2 == opts


def test_report_shows_the_generation_statistics_mlflow_logged(tmp_path):
    """A steady-state search with jobs=2 (the audit's case): the report's table, from runs/<id>/ or from
    MLflow alone, holds the very numbers logged as the run's metrics (they used to differ: the report
    recomputed them over each generation's newborn, counting cache hits and rejects differently)."""
    import attrs

    from gpengine import saved_search
    from gpengine.generation_stats import FIELDS
    from gpengine.report import build_report
    from gpengine.search import Search
    from gpengine.tracking import store

    uri = "sqlite:///" + str(tmp_path / "mlflow.db")
    cfg, opts = build_config(evaluator="symreg", seed=2, jobs=2, backend="sequential", tracking_uri=uri, overrides=[
        "population=8", "generations=3", "mode=steady_state", "points=7", "child_runs=notable", "prescreen=true"])
    out = Search(cfg, opts).run()
    client = store.client(uri, create=False)
    from gpengine.tracking.readback import find_search

    run = find_search(client, out.search_id)
    logged = {name: {m.step: m.value for m in client.get_metric_history(run.info.run_id, name)} for name in FIELDS[1:]}
    assert sorted(logged["mean"]) == [0, 1, 2, 3]
    local = saved_search.load(out.search_id, tracking_uri=uri, want_run=False)
    remote = saved_search._from_mlflow(client, run)
    for saved in (local, remote):
        assert [g["generation"] for g in saved.history] == [0, 1, 2, 3]
        for g in saved.history:
            for name in FIELDS[1:]:
                assert g[name] == pytest.approx(logged[name][g["generation"]], rel=1e-12), (saved.source, name)
    assert local.history == [{k: v for k, v in attrs.asdict(s).items() if k in FIELDS} for s in out.history]
    text = build_report(local, tmp_path / "r.html").read_text()
    table = text[text.index("per-generation numbers"):]
    for g in local.history:
        assert f"{g['mean']:.5g}" in table and f"{g['diversity']:.5g}" in table
