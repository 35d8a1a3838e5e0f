"""The command line: thin layer, clear one-line errors with exit status 2."""

import json
import os
from pathlib import Path

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


def test_evaluators_keeps_a_long_plugin_name_apart_from_its_description(monkeypatch):
    import gpengine.plugins as plugins

    monkeypatch.setattr(plugins, "evaluator_names", lambda: ["symreg", "a-very-long-plugin-name"])
    monkeypatch.setattr(plugins, "load_evaluator_class",
                        lambda name: type("E", (), {"description": f"about {name}"}))
    lines = invoke("evaluators").output.splitlines()
    assert lines == [f"{'symreg':23s} about symreg", "a-very-long-plugin-name about a-very-long-plugin-name"]


def test_primitives_sets_and_members():
    out = invoke("primitives").output
    assert "gaaf" in out and "arith" in out
    out = invoke("primitives", "gaaf").output
    assert "blend" in out and "learnable beta=1" in out


def test_evaluate_prints_fitness_and_metrics():
    res = invoke("evaluate", "x*x", "--evaluator", "symreg", "--set", "target=x**2", "--json")
    data = json.loads(res.output)
    assert abs(data["fitness"]) < 1e-12 and data["status"] == "ok" and abs(data["metrics"]["r2"] - 1) < 1e-12


def test_evaluate_names_the_split_it_scored(tmp_path):
    from tests.bnn_fakes import write_fake_cifar

    write_fake_cifar(tmp_path, per_batch=60, n_test=50)
    args = ["evaluate", "x", "-e", "bnn-cifar", "--set", f"data_dir={tmp_path}", "--set", "profile=smoke",
            "--set", "width=4", "--set", "epochs=1", "--set", "train_size=192", "--set", "val_size=100",
            "--set", "abort=off", "--set", "compile=off"]
    lines = invoke(*args, "--split", "test").stdout.splitlines()  # the progress bar is on stderr
    assert lines[1] == "data     CIFAR-10 (test split) (192 training, 50 scored)"
    assert json.loads(invoke(*args, "--json").stdout)["data"] == "CIFAR-10 (validation split)"
    assert "search keys do not apply" in " ".join(invoke("evaluate", "--help").output.split())


def test_a_warning_is_one_line_on_stderr_and_the_command_goes_on(tmp_path, monkeypatch):
    from evaluators.bnn_cifar import evaluator as E
    from tests.bnn_fakes import write_fake_cifar

    write_fake_cifar(tmp_path, per_batch=60, n_test=50)
    monkeypatch.setattr(E, "_cpu_has_fast_bf16", lambda: False)
    res = invoke("evaluate", "x", "-e", "bnn-cifar", "-q", "--json", "--set", f"data_dir={tmp_path}",
                 "--set", "profile=smoke", "--set", "width=4", "--set", "epochs=1", "--set", "train_size=192",
                 "--set", "val_size=100", "--set", "abort=off", "--set", "compile=off", "--set", "amp=binary")
    assert res.exit_code == 0 and json.loads(res.stdout)["status"] == "ok"
    warned = [line for line in res.stderr.splitlines() if line.startswith("warning:")]
    assert warned == ["warning: amp=binary on a CPU without native bf16 (no AMX or AVX512-BF16): its bf16 "
                      "convolutions run about 12x slower than fp32 here; amp=auto trains in fp32 on this CPU"]


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
        ("run", "-e", "symreg", "--seed", "-1"),
    ]
    for args in cases:
        res = CliRunner().invoke(main, list(args))
        assert res.exit_code == 2, (args, res.output)
        lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, res.output)


def test_click_usage_errors_are_one_line_naming_the_help_exit_2():
    # click's own layout is four lines (usage, hint, blank, error); ours is the error and where help is
    cases = {
        ("run", "--foo"): "error: No such option '--foo'. See 'gpengine run --help'.",
        ("bogus",): "error: No such command 'bogus'. See 'gpengine --help'.",
        ("--bogus",): "error: No such option '--bogus'. See 'gpengine --help'.",
        ("run", "--jobs", "x"): "error: Invalid value for '--jobs' / '-j': 'x' is not a valid integer. "
                                "See 'gpengine run --help'.",
        ("evaluate",): "error: Missing argument 'EXPRESSION'. See 'gpengine evaluate --help'.",
        ("run", "--set", "population=4", "generations=1"):
            "error: Got unexpected extra argument (generations=1). See 'gpengine run --help'.",
    }
    for args, line in cases.items():
        res = CliRunner().invoke(main, list(args), prog_name="gpengine")
        assert res.exit_code == 2, (args, res.output)
        assert res.output.strip().splitlines() == [line], (args, res.output)


def test_bare_gpengine_shows_the_help_not_an_error_line():
    # click >= 8.2 signals a bare group with a UsageError whose message is the whole help; it must not
    # come out as "error: Usage: ... See 'gpengine --help'."
    res = CliRunner().invoke(main, [], prog_name="gpengine")
    assert res.exit_code in (0, 2), res.output  # 2 from click 8.2 on, 0 before
    assert res.output.startswith("Usage: gpengine"), res.output
    assert "error:" not in res.output and "See 'gpengine --help'" not in res.output
    assert "check-evaluator" in res.output  # the command list


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


def _resume_argv(line: str) -> list[str]:
    """The `gpengine resume ...` command a line prints, as argv for `main`."""
    import shlex

    command = line[line.index("gpengine resume"):].rstrip(")")
    return shlex.split(command)[1:]


def test_summary_names_the_real_runs_folder_and_a_resume_command_that_works(tmp_path):
    elsewhere = tmp_path / "my runs"
    res = CliRunner().invoke(main, ["run", "-e", "symreg", "--set", "population=8", "--set", "generations=1",
                                    "--no-tracking", "-q", "--set", f"runs_dir={elsewhere}"])
    assert res.exit_code == 0, res.output
    (sid,) = [p.name for p in elsewhere.iterdir()]
    last = res.stdout.strip().splitlines()[-1]
    assert last.startswith(f"journal and checkpoint in {elsewhere / sid}/ (gpengine resume {sid} --runs-dir ")
    assert not (tmp_path / "runs").exists()
    again = CliRunner().invoke(main, [*_resume_argv(last), "-q"])  # exactly as printed
    assert again.exit_code == 0, again.output
    assert f"search {sid}: stopped by generations" in again.stdout


def test_the_search_id_and_folder_are_announced_at_the_start_unless_quiet():
    args = ["run", "-e", "symreg", "--set", "population=6", "--set", "generations=0", "--no-tracking"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0
    (sid,) = [p.name for p in (Path.cwd() / "runs").iterdir()]
    first = res.stderr.splitlines()[0]
    assert first == f"search {sid}: journal and checkpoint in runs/{sid}/ (gpengine resume {sid})"
    quiet = CliRunner().invoke(main, [*args, "-q"])
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_ctrl_c_saves_says_how_to_resume_and_exits_130(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from gpengine.journal import read_journal

    search = ["-e", "faults", "--no-tracking", "-q", "--seed", "2", "--set", "delay=0.2",
              "--set", "population=6", "--set", "generations=3"]
    cli = [sys.executable, "-m", "gpengine.cli"]
    # Ctrl-C as a terminal sends it: to the whole process group, workers included
    proc = subprocess.Popen([*cli, "run", *search, "--jobs", "2"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    journals = []
    while time.monotonic() < deadline and not (journals and journals[0].stat().st_size):
        time.sleep(0.1)
        journals = list((tmp_path / "runs").glob("*/journal.jsonl"))
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    sid = journals[0].parent.name
    saved = len(read_journal(journals[0]))
    lines = err.strip().splitlines()
    assert lines[0] == (f"interrupted: stopping the evaluations and saving search {sid} "
                        "(a few seconds; Ctrl-C again to quit at once)")
    assert lines[-1] == (f"search {sid} interrupted: {saved} evaluated individual{'s' * (saved != 1)} saved in "
                         f"runs/{sid}/; continue with: gpengine resume {sid}")
    assert "Aborted!" not in err and out == ""
    done = subprocess.run([*cli, *_resume_argv(lines[-1]), "-q"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"search {sid}: stopped by generations" in done.stdout


def test_sigterm_stops_as_ctrl_c_does_says_how_to_resume_and_exits_143(tmp_path):
    # `kill PID`, `timeout`, a job scheduler's time limit: SIGTERM to the search's process alone.
    # It used to kill the search silently (no resume hint, loky's "leaked semlock" warnings, the
    # MLflow run left RUNNING).
    import signal
    import subprocess
    import sys
    import time

    from gpengine.journal import read_journal

    search = ["-e", "faults", "--no-tracking", "-q", "--seed", "2", "--set", "delay=0.2",
              "--set", "population=6", "--set", "generations=3", "--jobs", "2"]
    cli = [sys.executable, "-m", "gpengine.cli"]
    proc = subprocess.Popen([*cli, "run", *search], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 60
    journals = []
    while time.monotonic() < deadline and not (journals and journals[0].stat().st_size):
        time.sleep(0.1)
        journals = list((tmp_path / "runs").glob("*/journal.jsonl"))
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    sid = journals[0].parent.name
    saved = read_journal(journals[0])
    assert saved and all(ind.result.ok for ind in saved)  # nothing in flight recorded as failed
    lines = err.strip().splitlines()
    assert lines == [f"terminated (SIGTERM): stopping the evaluations and saving search {sid} "
                     "(a few seconds; Ctrl-C again to quit at once)",
                     f"search {sid} interrupted: {len(saved)} evaluated individual{'s' * (len(saved) != 1)} saved "
                     f"in runs/{sid}/; continue with: gpengine resume {sid}"], err[-2000:]
    done = subprocess.run([*cli, *_resume_argv(lines[-1]), "-q"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"search {sid}: stopped by generations" in done.stdout
    assert [str(i.expr) for i in read_journal(journals[0])][:len(saved)] == [str(i.expr) for i in saved]


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


def test_a_tracking_database_that_is_a_folder_or_no_database_is_one_line(tmp_path):
    import time

    (tmp_path / "folder.db").mkdir()
    (tmp_path / "junk.db").write_text("not a database\n")
    search = ["run", "-e", "symreg", "-q", "--set", "population=4", "--set", "generations=0"]
    for name, message in [("folder.db", "is not a file"), ("junk.db", "file is not a database")]:
        uri = f"sqlite:///{tmp_path / name}"
        for args in ([*search, "--tracking-uri", uri], ["show", "--tracking-uri", uri]):
            t0 = time.perf_counter()
            line = _one_error_line(CliRunner().invoke(main, args))
            assert message in line and name in line, (args, line)
            assert time.perf_counter() - t0 < 15, "MLflow retries opening a folder for minutes"
    assert (tmp_path / "junk.db").read_text() == "not a database\n"


def test_evaluate_reads_a_chain_deeper_than_the_recursion_limit():
    res = invoke("evaluate", "-e", "symreg", "--", "+".join(["x"] * 3000))
    assert res.exit_code == 0 and "status   ok" in res.output
    assert res.output.splitlines()[0] == "expr     " + " + ".join(["x"] * 3000)


def test_evaluate_takes_a_seed_in_the_range_a_search_derives():
    # bnn-cifar reported 2**64 as a failed evaluation (exit 0), torch's "Overflow when unpacking long long"
    for seed in (str(2**64), "-1"):
        res = CliRunner().invoke(main, ["evaluate", "x", "-e", "symreg", "--seed", seed])
        assert res.exit_code == 2, res.output
        assert f"Invalid value for '--seed': {seed} is not in the range 0<=x<=4294967295." in res.output
    assert invoke("evaluate", "x", "-e", "symreg", "--seed", str(2**32 - 1)).exit_code == 0


def test_evaluate_records_an_evaluator_that_raises_as_a_failed_result_as_a_search_does():
    res = invoke("evaluate", "cos(x)", "-e", "faults", "--set", "fault=raise", "--json")
    out = json.loads(res.output)
    assert res.exit_code == 1 and out["status"] == "failed"  # printed, and a script can tell
    assert out["message"].startswith("RuntimeError: injected failure on cos(x) (faults.py:")
    assert out["fitness"] is None  # strict JSON: no bare NaN
    text = invoke("evaluate", "cos(x)", "-e", "faults", "--set", "fault=raise").output
    assert "Traceback" not in text and "status   failed (RuntimeError: injected failure on cos(x)" in text


def test_evaluate_reports_an_evaluator_returning_no_result_in_one_line(monkeypatch):
    from evaluators.faults import FaultInjection

    monkeypatch.setattr(FaultInjection, "evaluate", lambda self, expr, *, budget=1.0, seed=0: 0.5)
    res = invoke("evaluate", "x", "-e", "faults")
    assert res.exit_code == 1 and "status   failed (evaluator returned float, not a Result)" in res.output


def test_evaluate_json_is_strict_json_even_for_a_nan_fitness():
    res = invoke("evaluate", "1e308 * 1e308 + x", "-e", "symreg", "--set", "target=x**2", "--json")

    def refuse(token):
        raise AssertionError(f"not strict JSON: {token}")

    out = json.loads(res.output, parse_constant=refuse)
    assert out["status"] == "failed" and out["fitness"] is None and res.exit_code == 1


def test_ctrl_c_before_a_search_starts_exits_130_in_one_line(monkeypatch):
    import gpengine.plugins as plugins

    def interrupted(name):
        raise KeyboardInterrupt  # as if Ctrl-C came while the evaluator's module was importing

    monkeypatch.setattr(plugins, "load_evaluator_class", interrupted)
    res = CliRunner().invoke(main, ["evaluate", "x", "-e", "symreg"])
    assert res.exit_code == 130 and res.output.strip() == "interrupted"
