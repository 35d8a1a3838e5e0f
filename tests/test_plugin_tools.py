"""`gpengine new-evaluator` and `check-evaluator`: from nothing to a search with a new plugin."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from gpengine.cli import main
from gpengine.errors import ConfigError, GpengineError
from gpengine.scaffold import names_for, scaffold


def gpengine(*args, cwd=None, check=True):
    """The CLI in a fresh interpreter: entry points and .pth files of a new install are read at start-up."""
    out = subprocess.run([sys.executable, "-m", "gpengine.cli", *args], capture_output=True, text=True, cwd=cwd)
    if check and out.returncode != 0:
        raise AssertionError(f"gpengine {' '.join(args)} exited {out.returncode}:\n{out.stdout}\n{out.stderr}")
    return out


def pip(*args):
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    out = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    return out


def test_names_and_bad_names():
    assert names_for("my-eval") == {"name": "my-eval", "dist": "gpengine-my-eval", "package": "gpengine_my_eval",
                                    "cls": "MyEval", "snake": "my_eval"}
    for bad in ("My-Eval", "my_eval", "-x", "a--b", "9lives", ""):
        with pytest.raises(ConfigError):
            names_for(bad)


def test_new_evaluator_refuses_a_name_already_installed(tmp_path):
    # the new package's entry point would be shadowed by the installed one, silently
    result = CliRunner().invoke(main, ["new-evaluator", "symreg", str(tmp_path / "pkg")])
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: evaluator name 'symreg' is taken by an installed evaluator (installed: ")
    assert not (tmp_path / "pkg").exists()


def test_scaffold_refuses_a_folder_with_files(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    # not the guide's `my-eval`: an author who followed it has that one installed, and a taken name is refused first
    with pytest.raises(GpengineError, match="not empty"):
        scaffold("folder-probe", tmp_path / "taken")
    result = CliRunner().invoke(main, ["new-evaluator", "folder-probe", str(tmp_path / "taken")])
    assert result.exit_code == 2 and "not empty" in result.output


def test_new_evaluator_in_a_folder_that_cannot_be_made_is_one_line(tmp_path):
    (tmp_path / "a-file").write_text("mine")
    result = CliRunner().invoke(main, ["new-evaluator", "my-eval", str(tmp_path / "a-file" / "pkg")])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: cannot write {tmp_path / 'a-file' / 'pkg' / 'pyproject.toml'}: Not a directory; choose another DIR"]
    assert (tmp_path / "a-file").read_text() == "mine"


def test_scaffolded_evaluator_passes_the_contract_before_install(tmp_path, monkeypatch):
    scaffold("tmpl-eval", tmp_path / "pkg")
    monkeypatch.syspath_prepend(str(tmp_path / "pkg"))
    from gpengine.contract import check_evaluator
    from gpengine_tmpl_eval import TmplEval

    assert all(c.passed for c in check_evaluator(TmplEval))
    assert all(c.passed for c in check_evaluator(TmplEval, {"target": "swish", "points": 8}))
    for bad in ({"low": True}, {"high": "3"}, {"points": True}):  # a bool is not a number to a user
        with pytest.raises((ConfigError, TypeError)):
            TmplEval(**bad)


@pytest.mark.parametrize("name, cls, why", [
    ("result", "Result", "which the generated code imports from gpengine.evaluator"),
    ("dataset-info", "DatasetInfo", "which the generated code imports from gpengine.evaluator"),
    ("config-error", "ConfigError", "which the generated code imports from gpengine.errors"),
    ("evaluator", "Evaluator", "which the generated code imports from gpengine.evaluator"),
    ("expr", "Expr", "which the generated code imports from gpengine.expr"),
    ("exception", "Exception", "which the generated code uses"),  # its `except Exception` would catch nothing
    ("none", "None", "which is a Python keyword"),  # `class None(Evaluator)`: a SyntaxError
])
def test_a_name_whose_class_would_shadow_the_templates_names_is_one_line_exit_2(tmp_path, name, cls, why):
    # `class Result(Evaluator)` shadowed the import: Result(-mse, ...) built the evaluator, a TypeError
    result = CliRunner().invoke(main, ["new-evaluator", name, str(tmp_path / "pkg")])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: evaluator name {name!r} would name its class {cls!r}, {why}; choose another name, e.g. {name}-eval"]
    assert not (tmp_path / "pkg").exists()


def test_the_suggested_name_scaffolds_a_package_whose_own_tests_pass(tmp_path, monkeypatch):
    import importlib.util

    with pytest.raises(ConfigError, match="e.g. result-eval$"):
        names_for("result")
    scaffold("result-eval", tmp_path / "pkg")
    monkeypatch.syspath_prepend(str(tmp_path / "pkg"))
    spec = importlib.util.spec_from_file_location("generated_test", tmp_path / "pkg" / "tests" / "test_result_eval.py")
    generated = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generated)
    generated.test_a_good_expression_scores_higher_than_a_bad_one()  # the one that built Result as the evaluator


def test_scaffold_readme_installs_pytest_before_running_the_tests(tmp_path):
    # `pip install -e .` then `python -m pytest` failed in a fresh venv: pytest is the `test` extra
    scaffold("readme-probe", tmp_path / "pkg")
    readme = (tmp_path / "pkg" / "README.md").read_text()
    assert 'test = ["pytest"]' in (tmp_path / "pkg" / "pyproject.toml").read_text()
    assert readme.index('pip install -e ".[test]"') < readme.index("python -m pytest")


def test_check_evaluator_on_builtin_symreg():
    result = CliRunner().invoke(main, ["check-evaluator", "symreg", "--set", "points=12"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert sum(line.startswith("PASS") for line in lines) == 8
    assert "all checks passed" in lines[-1]
    same = CliRunner().invoke(main, ["check-evaluator", "symreg", "--set", "evaluator.points=12"])  # as run takes it
    assert same.exit_code == 0 and same.output == result.output, same.output


def test_check_evaluator_fails_a_plugin_that_raises():
    result = CliRunner().invoke(main, ["check-evaluator", "faults", "--set", "fault=raise", "--set", "trigger=*"])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    # every check runs and says what it found, not only those before the first failure
    assert [line.split()[:2] for line in lines[:-1]] == [
        ["PASS", "loads"], ["PASS", "options"], ["PASS", "builds"], ["FAIL", "evaluates"], ["PASS", "pickle"],
        ["FAIL", "deterministic"], ["FAIL", "budget"], ["FAIL", "failure"]]
    assert lines[-1] == "faults: contract broken (4/8)"


def test_check_evaluator_user_errors_exit_2():
    runner = CliRunner()
    assert runner.invoke(main, ["check-evaluator", "no-such-eval"]).exit_code == 2
    assert runner.invoke(main, ["check-evaluator", "symreg", "--set", "bogus=1"]).exit_code == 2


@pytest.mark.slow
def test_new_plugin_from_scaffold_to_search(tmp_path):
    """Scaffold, pip install -e, listed, searched with, contract checked; uninstalled whatever happens."""
    name = "scaffold-probe"
    folder = tmp_path / "plugin"
    out = gpengine("new-evaluator", name, str(folder))
    assert "pip install -e" in out.stdout
    try:
        pip("install", "-q", "--no-deps", "--no-build-isolation", "-e", str(folder))
        listed = gpengine("evaluators").stdout
        assert any(line.split()[0] == name for line in listed.splitlines() if line.strip())
        run = gpengine("run", "--evaluator", name, "--set", "population=8", "--set", "generations=2",
                       "--seed", "1", "--no-tracking", "--quiet", cwd=tmp_path)
        assert "best:" in run.stdout
        checked = gpengine("check-evaluator", name, "--set", "target=softsign", check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "all checks passed" in checked.stdout
        tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder / "tests")],
                               capture_output=True, text=True, cwd=folder)
        assert tests.returncode == 0, tests.stdout + tests.stderr
    finally:
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "-y", "-q", f"gpengine-{name}"],
                       capture_output=True, text=True)
    assert name not in gpengine("evaluators").stdout


def _readme_plugin_example(repo_root) -> str:
    text = (repo_root / "README.md").read_text()
    section = text[text.index("## Writing an evaluator plugin"):]
    return section[section.index("```python") + len("```python"):section.index("```\n", section.index("```python"))]


BUILD_FAILS = '''
from gpengine.evaluator import Evaluator, Result

class BuildFails(Evaluator):
    description = "a constructor that trips over an option"
    def __init__(self, **options):
        super().__init__(**options)
        int("twelve")  # a plugin's own parsing, not an attrs validator
    def evaluate(self, expr, *, budget=1.0, seed=0):
        return Result(0.0)
'''


@pytest.fixture
def installed(tmp_path, monkeypatch, repo_root):
    """The README's `square` example and a `build-fails` plugin, as if pip-installed."""
    from importlib.metadata import EntryPoint

    import gpengine.plugins as plugins

    (tmp_path / "readme_square.py").write_text(_readme_plugin_example(repo_root))
    (tmp_path / "build_fails.py").write_text(BUILD_FAILS)
    monkeypatch.syspath_prepend(str(tmp_path))
    real = plugins._entry_points
    extra = {"square": EntryPoint("square", "readme_square:Square", plugins.GROUP),
             "build-fails": EntryPoint("build-fails", "build_fails:BuildFails", plugins.GROUP)}
    monkeypatch.setattr(plugins, "_entry_points", lambda: {**real(), **extra})


def one_error_line(result) -> str:
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def test_the_readme_plugin_example_refuses_a_mistyped_option_in_one_line(installed, tmp_path):
    from gpengine.contract import check_evaluator

    assert all(c.passed for c in check_evaluator("square"))
    runner = CliRunner()
    line = one_error_line(runner.invoke(main, ["evaluate", "x*x", "-e", "square", "--set", "points=abc"]))
    assert "points" in line and "'abc'" in line
    line = one_error_line(runner.invoke(main, ["run", "-e", "square", "--set", "points=abc", "-q", "--no-tracking"]))
    assert "points" in line
    assert not (tmp_path / "runs").exists()  # refused before any evaluation
    ok = runner.invoke(main, ["evaluate", "x*x", "-e", "square", "--set", "points=5", "--json"])
    assert ok.exit_code == 0 and json.loads(ok.output)["fitness"] == 0.0


def test_a_constructor_that_raises_is_one_line_exit_2(installed, tmp_path):
    runner = CliRunner()
    for args in (["evaluate", "x", "-e", "build-fails"], ["run", "-e", "build-fails", "-q", "--no-tracking"]):
        line = one_error_line(runner.invoke(main, args))
        assert line == ("error: evaluator 'build-fails' cannot be built from its options (defaults): "
                        "ValueError: invalid literal for int() with base 10: 'twelve'"), line
    assert not (tmp_path / "runs").exists()


def test_a_plugin_that_exits_on_import_or_hides_its_signature_is_listed_broken_not_fatal(tmp_path, monkeypatch):
    from importlib.metadata import EntryPoint

    import gpengine.plugins as plugins

    (tmp_path / "exits_on_import.py").write_text('import sys\nsys.exit("needs CUDA")\n')
    (tmp_path / "no_signature.py").write_text(
        "from gpengine.evaluator import Evaluator\n\nclass NoSignature(Evaluator):\n    evaluate = max\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    real = plugins._entry_points
    extra = {"aa-exits": EntryPoint("aa-exits", "exits_on_import:Thing", plugins.GROUP),
             "aa-no-signature": EntryPoint("aa-no-signature", "no_signature:NoSignature", plugins.GROUP)}
    monkeypatch.setattr(plugins, "_entry_points", lambda: {**real(), **extra})
    res = CliRunner().invoke(main, ["evaluators"])
    assert res.exit_code == 0, res.output
    lines = {ln.split()[0]: ln for ln in res.output.splitlines()}
    assert "failed to load: SystemExit: needs CUDA" in lines["aa-exits"]
    assert "cannot read the signature" in lines["aa-no-signature"]
    assert "symreg" in lines and "broken" not in lines["symreg"]  # the plugins after them still listed
