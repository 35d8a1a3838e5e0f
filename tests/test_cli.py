"""The command line: thin layer, clear one-line errors with exit status 2."""

import json

from click.testing import CliRunner

from gpengine.cli import main


def invoke(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_help_lists_the_commands():
    out = invoke("--help").output
    for cmd in ("run", "evaluators", "primitives", "evaluate"):
        assert cmd in out


def test_run_help_is_pinned():
    out = invoke("run", "--help").output
    for opt in ("--evaluator", "--config", "--set", "--seed", "--jobs", "--tracking-uri"):
        assert opt in out


def test_evaluators_lists_builtins_with_descriptions():
    out = invoke("evaluators").output
    assert "symreg" in out and "bnn-cifar" in out
    assert "symbolic regression" in out


def test_primitives_sets_and_members():
    out = invoke("primitives").output
    assert "gaaf" in out and "arith" in out
    out = invoke("primitives", "gaaf").output
    assert "blend" in out and "learnable beta=1" in out


def test_evaluate_prints_fitness_and_metrics():
    res = invoke("evaluate", "x*x", "--evaluator", "symreg", "--set", "target=x**2", "--json")
    data = json.loads(res.output)
    assert abs(data["fitness"]) < 1e-12 and data["status"] == "ok" and abs(data["metrics"]["r2"] - 1) < 1e-12


def test_run_small_search_prints_summary():
    res = invoke("run", "-e", "symreg", "--set", "population=20", "--set", "generations=2", "--no-tracking",
                 "-q", "--seed", "1")
    assert res.exit_code == 0
    assert "stopped by generations" in res.output and "best:" in res.output


def test_bad_input_one_line_exit_2():
    cases = [
        ("evaluate", "sin(", "-e", "symreg"),
        ("evaluate", "foo(x)", "-e", "symreg"),
        ("run", "-e", "nope"),
        ("run", "-e", "symreg", "--set", "population=-3"),
        ("run", "-e", "symreg", "--set", "colour=red"),
        ("primitives", "nope"),
        ("run", "-e", "symreg", "--config", "/nonexistent.toml"),
    ]
    for args in cases:
        res = CliRunner().invoke(main, list(args))
        assert res.exit_code == 2, (args, res.output)
        lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, res.output)


def test_evaluate_split_needs_an_evaluator_with_splits():
    res = CliRunner().invoke(main, ["evaluate", "x", "-e", "symreg", "--split", "test"])
    assert res.exit_code == 2 and "no data splits" in res.output


def test_unwritable_runs_folder_is_one_line_exit_2(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("keep me")
    res = CliRunner().invoke(main, ["run", "-e", "symreg", "--no-tracking", "-q", "--set", "population=4",
                                    "--set", f"runs_dir={blocker}"])
    assert res.exit_code == 2
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: cannot write to runs folder")
    assert blocker.read_text() == "keep me"


def test_tracking_false_in_set_or_config_file_turns_tracking_off(tmp_path):
    # the default store would be runs/mlflow.db under the working directory (a tmp dir here)
    res = invoke("run", "-e", "symreg", "-q", "--set", "population=4", "--set", "generations=0",
                 "--set", "tracking=false")
    assert res.exit_code == 0, res.output
    toml = tmp_path / "search.toml"
    toml.write_text('evaluator = "symreg"\npopulation = 4\ngenerations = 0\ntracking = false\n')
    res = invoke("run", "--config", str(toml), "-q")
    assert res.exit_code == 0, res.output
    searches = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    assert len(searches) == 2  # both searches ran and journaled ...
    assert not (tmp_path / "runs" / "mlflow.db").exists()  # ... and neither wrote to MLflow
