"""The contract suite: passes honest plugins, names the promise a broken one breaks."""

from __future__ import annotations

import math
import subprocess
import sys

import attrs
import numpy as np
import pytest

from gpengine.contract import CHECKS, ContractError, check_evaluator, failing_expr, run_checks, sample_expr
from gpengine.errors import ConfigError, PluginError
from gpengine.evaluator import Evaluator, Result
from primitives import get_set


class Honest(Evaluator):
    description = "test evaluator that keeps every promise"
    primitive_set = "arith"
    min_budget = 0.5

    def evaluate(self, expr, *, budget=1.0, seed=0):
        from gpengine.numeric import evaluate

        y = evaluate(expr, self.pset, np.linspace(-1, 1, 9))
        if not np.all(np.isfinite(y)):
            return Result.failed("non-finite")
        return Result(-float(np.mean(y**2)) + np.random.default_rng(seed).normal() * 1e-3)


class Raises(Honest):
    def evaluate(self, expr, *, budget=1.0, seed=0):
        raise RuntimeError("boom")


class Unseeded(Honest):
    def evaluate(self, expr, *, budget=1.0, seed=0):
        return Result(float(np.random.default_rng().normal()))


class SwallowsOptions(Honest):
    def __init__(self, **options):  # never validates: unknown keys pass silently
        self.primitives = options.get("primitives") or self.primitive_set
        self.options = self.Options()


class Unpicklable(Honest):
    def __init__(self, **options):
        super().__init__(**options)
        self.hook = lambda: None


class NanIsOk(Honest):
    def evaluate(self, expr, *, budget=1.0, seed=0):
        r = super().evaluate(expr, budget=budget, seed=seed)
        return r if r.ok else Result(math.nan)


class RefusesSmallBudgets(Honest):
    def evaluate(self, expr, *, budget=1.0, seed=0):
        if budget < 1.0:
            raise ValueError("budget too small")
        return super().evaluate(expr, budget=budget, seed=seed)


class FailsEverything(Honest):
    def evaluate(self, expr, *, budget=1.0, seed=0):
        return Result.failed("bug in my plugin")


class NanAtLowBudgets(Honest):
    def evaluate(self, expr, *, budget=1.0, seed=0):
        return Result(math.nan) if budget < 1.0 else super().evaluate(expr, budget=budget, seed=seed)


class WithOptions(Honest):
    @attrs.define(kw_only=True)
    class Options:
        scale: float = attrs.field(default=1.0, validator=attrs.validators.instance_of(float))


class UntypedNumber(Honest):
    @attrs.define(kw_only=True)
    class Options:
        points: int = 9  # no validator: --set points=abc would reach evaluate


class RaisesWhenBuilt(Honest):
    def __init__(self, **options):
        super().__init__(**options)
        raise RuntimeError("no data")


def failed_names(cls, options=None):
    return [c.name for c in run_checks(cls, options) if not c.passed]


def test_builtin_symreg_passes_every_check():
    checks = check_evaluator("symreg")
    assert [c.name for c in checks] == ["loads", "options", "builds", "evaluates", "pickle", "deterministic",
                                        "budget", "failure"]
    assert all(c.passed for c in checks)


def test_faults_evaluator_is_caught_raising_and_returning_nan_as_ok():
    with pytest.raises(ContractError, match="evaluates"):
        check_evaluator("faults", {"fault": "raise", "trigger": "*"})
    assert "failure" in failed_names("faults", {"fault": "nan", "trigger": "*"})


def test_an_honest_class_passes_without_being_installed():
    assert all(c.passed for c in check_evaluator(Honest))
    assert all(c.passed for c in check_evaluator(WithOptions, {"scale": 2.0}))


@pytest.mark.parametrize(
    "cls, broken",
    [
        (Raises, "evaluates"),
        (Unseeded, "deterministic"),
        (SwallowsOptions, "options"),
        (Unpicklable, "pickle"),
        (NanIsOk, "failure"),
        (RefusesSmallBudgets, "budget"),
        (FailsEverything, "evaluates"),  # passed: a failed Result is a Result
        (NanAtLowBudgets, "budget"),  # passed: only budget 1 was held to a finite fitness
        (UntypedNumber, "options"),
    ],
)
def test_each_broken_promise_is_named(cls, broken):
    assert broken in failed_names(cls)
    with pytest.raises(ContractError, match=broken):
        check_evaluator(cls)


def test_user_errors_are_raised_not_reported():
    with pytest.raises(PluginError, match="unknown evaluator 'no-such'"):
        run_checks("no-such")
    with pytest.raises(ConfigError, match="scale"):
        run_checks(WithOptions, {"scale": "big"})


def test_an_unknown_evaluator_names_the_likely_slip(tmp_path, monkeypatch):
    from gpengine.plugins import load_evaluator_class

    # a package installed with the group misspelt: [project.entry-points."gpengine.evaluator"]
    dist = tmp_path / "my_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[gpengine.evaluator]\nmy-eval = my_plugin:MyEval\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError, match="unknown evaluator 'my-eval': it is registered under the entry-point "
                                          "group 'gpengine.evaluator', not 'gpengine.evaluators'"):
        load_evaluator_class("my-eval")
    with pytest.raises(PluginError, match="unknown evaluator 'symerg'; did you mean 'symreg'\\?"):
        load_evaluator_class("symerg")
    # check-evaluator is where a plugin author meets the slip first: same hint
    with pytest.raises(PluginError, match="registered under the entry-point group 'gpengine.evaluator'"):
        run_checks("my-eval")
    with pytest.raises(PluginError, match="did you mean 'symreg'"):
        run_checks("symerg")


def test_class_that_is_not_an_evaluator_fails_to_load():
    class NotAPlugin:
        def evaluate(self, expr, *, budget, seed):
            return Result(0.0)

    checks = run_checks(NotAPlugin)
    assert [(c.name, c.passed) for c in checks] == [(name, False) for name in CHECKS]
    assert all(c.message == "not run: the class did not load" for c in checks[1:])


def test_an_unknown_primitive_set_says_where_an_authors_own_set_goes():
    class OwnSet(Honest):
        primitive_set = "unregistered"  # written, but not registered as a plugin set

    (loads,) = [c for c in run_checks(OwnSet) if c.name == "loads"]
    assert not loads.passed
    assert "primitive_set 'unregistered' is not a known set (" in loads.message
    assert "entry-point group 'gpengine.primitives'" in loads.message


def test_a_wrongly_typed_number_option_must_be_a_config_error():
    (options,) = [c for c in run_checks(UntypedNumber) if c.name == "options"]
    assert not options.passed
    assert options.message.startswith("points='gpengine-contract-not-a-number' was accepted")
    (options,) = [c for c in run_checks(WithOptions) if c.name == "options"]
    assert options.passed and options.message.endswith("a string for scale -> ConfigError")


def test_every_check_is_reported_even_after_a_failure():
    checks = run_checks(Raises)
    assert [c.name for c in checks] == list(CHECKS)
    assert [c.name for c in checks if not c.passed] == ["evaluates", "deterministic", "budget", "failure"]
    checks = run_checks(RaisesWhenBuilt)
    assert [(c.name, c.passed) for c in checks][:3] == [("loads", True), ("options", True), ("builds", False)]
    assert [c.message for c in checks[3:]] == ["not run: the evaluator did not build"] * 5


@pytest.mark.parametrize("set_name", ["arith", "gaaf"])
def test_sample_and_failing_expressions_exist_for_builtin_sets(set_name):
    from gpengine.numeric import evaluate

    pset = get_set(set_name)
    assert "x" in str(sample_expr(pset))
    bad = failing_expr(pset)
    assert bad is not None
    assert not np.isfinite(evaluate(bad, pset, np.linspace(-3, 3, 7))).any()


def test_contract_suite_does_not_import_torch():
    code = "import sys, gpengine.contract, gpengine.plugin_tools; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_plugin_author_imports_the_api_from_the_package_without_torch():
    code = ("import sys, gpengine, gpengine.evaluator as E; "
            "print(gpengine.Evaluator is E.Evaluator and gpengine.Result is E.Result "
            "and gpengine.DatasetInfo is E.DatasetInfo, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False"]
