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


def _one_error_line(res):
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
    assert res.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), res.output
    return lines[0]


def test_refused_tracking_uri_stops_before_the_search_with_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    for uri in (str(tmp_path / "store"), (tmp_path / "store").as_uri(), "nosuch://host/x"):
        line = _one_error_line(CliRunner().invoke(
            main, ["run", "-e", "symreg", "-q", "--tracking-uri", uri, "--set", "population=4",
                   "--set", "generations=0"]))
        assert repr(uri) in line and "sqlite:///" in line and "http(s)://" in line
    assert not (tmp_path / "runs").exists() and not (tmp_path / "store").exists()  # nothing left behind


def test_resume_with_a_refused_tracking_uri_is_one_line(tmp_path):
    res = invoke("run", "-e", "symreg", "-q", "--no-tracking", "--set", "population=4", "--set", "generations=0")
    search_id = res.output.split()[1].rstrip(":")
    # as the old code left it: a search that tracks to a folder (its run stopped at the start)
    saved = tmp_path / "runs" / search_id / "search.json"
    data = json.loads(saved.read_text())
    data["config"].update(tracking=True, tracking_uri=str(tmp_path / "x"))
    saved.write_text(json.dumps(data))
    journal = (tmp_path / "runs" / search_id / "journal.jsonl").read_text()
    line = _one_error_line(CliRunner().invoke(main, ["resume", search_id, "-q"]))
    assert repr(str(tmp_path / "x")) in line and "file store" in line
    assert (tmp_path / "runs" / search_id / "journal.jsonl").read_text() == journal  # the search is intact


def test_tracking_server_down_at_start_fails_fast_with_one_line(tmp_path):
    import socket
    import time

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.perf_counter()
    res = CliRunner().invoke(main, ["run", "-e", "symreg", "-q", "--tracking-uri", f"http://127.0.0.1:{port}",
                                    "--set", "population=4", "--set", "generations=0"])
    took = time.perf_counter() - t0
    line = _one_error_line(res)
    assert f"http://127.0.0.1:{port} is not reachable" in line and "--no-tracking" in line
    assert took < 15, f"took {took:.0f}s: MLflow's own retries would take minutes"
    assert not (tmp_path / "runs").exists()
