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
