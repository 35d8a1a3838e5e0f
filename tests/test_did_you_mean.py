"""A misspelt name in an error gets the closest allowed name: keys, options, choices, primitives, sets."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from hypothesis import given, strategies as st

from gpengine.cli import main
from gpengine.config import build_config
from gpengine.errors import ConfigError, GpengineError, PluginError, did_you_mean
from gpengine.expr_text import parse
from gpengine.plugins import make_evaluator
from primitives import get_set

names = st.text(alphabet="abcdefghij_", min_size=1, max_size=12)


@given(name=names, choices=st.lists(names, max_size=8))
def test_a_suggestion_is_always_one_of_the_choices(name, choices):
    hint = did_you_mean(name, choices)
    if hint:
        assert hint.startswith("; did you mean ") and hint.endswith("?")
        assert _suggested(hint) in choices


@given(choices=st.lists(names, min_size=1, max_size=8, unique=True), data=st.data())
def test_a_name_that_is_a_choice_suggests_itself(choices, data):
    name = data.draw(st.sampled_from(choices))
    assert did_you_mean(name, choices) == f"; did you mean {name!r}?"


def test_nothing_is_suggested_when_no_choice_is_close_or_the_name_is_not_text():
    assert did_you_mean("zzzz", ["population", "generations"]) == ""
    assert did_you_mean(3, ["population"]) == ""
    assert did_you_mean("x", []) == ""


def _suggested(hint: str) -> str:
    """The name inside "; did you mean 'NAME'?" (written with repr, read back without eval)."""
    inner = hint[len("; did you mean "):-1]
    assert inner[0] == inner[-1] and inner[0] in "'\""
    return inner[1:-1]


def _message(fn, *args, **kwargs) -> str:
    with pytest.raises(GpengineError) as err:
        fn(*args, **kwargs)
    return str(err.value)


def test_a_misspelt_search_key_names_the_key_it_meant_and_still_lists_them_all(tmp_path):
    msg = _message(build_config, evaluator="symreg", overrides=["generatons=3"], evaluator_option_names=["target"])
    assert msg.startswith("unknown key 'generatons'; did you mean 'generations'? (search keys: evaluator, ")
    assert msg.endswith("evaluator options: target)")
    # an evaluator option is among the candidates of a --set key
    msg = _message(build_config, evaluator="symreg", overrides=["trget=x"], evaluator_option_names=["target"])
    assert msg.startswith("unknown key 'trget'; did you mean 'target'? (")
    f = tmp_path / "c.toml"
    f.write_text('evaluator = "symreg"\npopulaton = 3\n')
    assert _message(build_config, config_file=f).startswith(
        f"unknown key 'populaton' in {f}; did you mean 'population'? (search keys: ")


def test_a_misspelt_choice_and_option_name_what_they_meant():
    msg = _message(build_config, evaluator="symreg", overrides=["selection=tournamnet"], evaluator_option_names=[])
    assert msg == ("selection must be one of tournament, nsga2, fitness_proportionate (got 'tournamnet'); "
                   "did you mean 'tournament'?")
    msg = _message(make_evaluator, "symreg", {"poitns": 10})
    assert msg.startswith("unknown option 'poitns' for evaluator 'symreg'; did you mean 'points'? (allowed: target, ")


def test_a_misspelt_primitive_or_primitive_set_names_the_one_it_meant():
    arith = get_set("arith")
    with pytest.raises(GpengineError) as err:
        parse("sine(x) + x", arith)
    assert "primitive 'sine' is not in primitive set 'arith'; did you mean 'sin'? (known: add, " in str(err.value)
    assert _message(get_set, "arth").startswith("unknown primitive set 'arth'; did you mean 'arith'? (known: ")
    assert "'mull' not in 'arith'; did you mean 'mul'? (it has: " in _message(get_set, "arith:add,mull")
    with pytest.raises(PluginError, match=r"unknown primitive 'cso' in set 'arith'; did you mean 'cos'\? \(known"):
        arith["cso"]


def test_evaluate_reads_evaluator_dot_key_as_run_does_and_refuses_a_search_key_in_one_line():
    res = CliRunner().invoke(main, ["evaluate", "x", "-e", "symreg", "--set", "evaluator.points=7"])
    assert res.exit_code == 0, res.output
    assert "data     symreg (7 training)" in res.output.splitlines()  # the option took effect
    res = CliRunner().invoke(main, ["evaluate", "x", "-e", "symreg", "--set", "population=3"])
    assert res.exit_code == 2
    assert res.output.strip().splitlines() == [
        "error: 'population' is a search key, for gpengine run; gpengine evaluate takes evaluator options only "
        "(target, data, points, low, high, metric)"]
    res = CliRunner().invoke(main, ["evaluate", "x", "-e", "symreg", "--set", "evaluator.poitns=7"])
    assert res.exit_code == 2
    assert "unknown option 'poitns' for evaluator 'symreg'; did you mean 'points'?" in res.output
    # evaluator.KEY is an evaluator option whatever KEY is, as in gpengine run
    res = CliRunner().invoke(main, ["evaluate", "x", "-e", "symreg", "--set", "evaluator.population=3"])
    assert res.exit_code == 2 and "unknown option 'population' for evaluator 'symreg'" in res.output
