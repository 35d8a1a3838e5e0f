"""init_primitives: the first population starts with every primitive of the set applied to x once."""

import pytest
from click.testing import CliRunner

from gpengine.cli import main
from gpengine.config import build_config
from gpengine.errors import ConfigError
from gpengine.expr_text import parse
from gpengine.first_population import primitive_trees
from gpengine.search import Search
from gpengine.variation import Limits

# symreg's set (arith): 5 unary and 4 binary primitives
ARITH_ALONE = {"-x", "sin(x)", "cos(x)", "exp(x)", "log(x)", "x + x", "x - x", "x * x", "x / x"}


def make(overrides=(), seed=0):
    cfg, opts = build_config(evaluator="symreg", overrides=["population=12", "generations=3", "tracking=false",
                                                           "init_primitives=true", *overrides], seed=seed)
    return Search(cfg, opts)


def sig(out):
    return [(i.id, str(i.expr), i.operator, i.parent_ids, repr(i.result.fitness)) for i in out.individuals]


@pytest.mark.parametrize("extra", [[], ["mode=steady_state"], ["mode=async", "async_window=3"], ["strategy=random"]])
def test_generation_0_holds_every_primitive_alone_once_then_random_trees(extra):
    out = make(extra).run()
    first = [i for i in out.individuals if i.generation == 0]
    alone = [i for i in first if i.operator == "init-primitive"]
    assert [str(i.expr) for i in first[:len(ARITH_ALONE)]] == [str(i.expr) for i in alone]  # they come first
    assert sorted(str(i.expr) for i in alone) == sorted(ARITH_ALONE)  # each once
    assert all(i.parent_ids == () for i in alone)
    rest = first[len(ARITH_ALONE):]
    assert len(rest) == 12 - len(ARITH_ALONE) and all(i.operator == "init-ramped" for i in rest)
    assert not {str(i.expr) for i in rest} & ARITH_ALONE  # a random draw does not repeat one


def test_guesses_come_first_and_a_guessed_primitive_is_not_proposed_twice():
    out = make(['guesses=["sin(x)", "x * x * x"]']).run()
    first = [i for i in out.individuals if i.generation == 0]
    assert [(str(i.expr), i.operator) for i in first[:2]] == [("sin(x)", "init-guess"), ("x * x * x", "init-guess")]
    assert [str(i.expr) for i in first].count("sin(x)") == 1
    assert sorted(str(i.expr) for i in first if i.operator == "init-primitive") == sorted(ARITH_ALONE - {"sin(x)"})


def test_the_order_comes_from_the_seed():
    def order(seed):
        return [str(i.expr) for i in make(seed=seed).run().individuals if i.operator == "init-primitive"]

    assert order(5) == order(5)
    assert {tuple(order(s)) for s in range(4)} != {tuple(order(5))}  # shuffled, not the set's order
    assert len({tuple(order(s)) for s in range(4)}) > 1


def test_off_by_default_and_the_plain_search_is_unchanged():
    cfg, _ = build_config(evaluator="symreg", overrides=["tracking=false"], seed=0)
    assert cfg.init_primitives is False
    plain = make(["init_primitives=false"], seed=3).run()
    assert not any(i.operator == "init-primitive" for i in plain.individuals)


def test_a_population_smaller_than_the_set_is_filled_from_the_primitives_first():
    out = make(["population=4", "elitism=1"]).run()
    first = [i for i in out.individuals if i.generation == 0]
    assert len(first) == 4 and all(i.operator == "init-primitive" for i in first)
    later = [str(i.expr) for i in out.individuals if i.operator == "init-primitive"]
    assert len(later) == len(set(later))  # the rest are not drawn in later generations


def test_a_resumed_search_does_not_propose_the_primitives_again():
    full = make(["generations=4"], seed=2).run()
    part = make(["generations=2"], seed=2).run()
    resumed = Search.resume(part.search_id, overrides={"generations": 4}).run()
    assert sig(resumed) == sig(full)
    assert sum(i.operator == "init-primitive" for i in resumed.individuals) == len(ARITH_ALONE)


def test_primitives_past_the_size_limits_are_left_out():
    pset = make().pset
    assert {str(t) for t in primitive_trees(pset, Limits(max_depth=8, max_size=40))} == ARITH_ALONE
    small = primitive_trees(pset, Limits(max_depth=8, max_size=2))
    assert {str(t) for t in small} == {"-x", "sin(x)", "cos(x)", "exp(x)", "log(x)"}
    assert primitive_trees(pset, Limits(max_depth=1, max_size=40)) == []
    assert all(t == parse(str(t), pset) for t in small)


def test_gaaf_refuses_it_in_one_line_with_status_2(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match=r"init_primitives is for tree GP and random search"):
        make(["strategy=gaaf", "primitives=gaaf", "init=gaaf3"])
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(main, ["run", "-e", "symreg", "--no-tracking", "-q", "--set", "init_primitives=true",
                                    "--set", "strategy=gaaf", "--set", "init=gaaf3", "--set", "primitives=gaaf"])
    assert res.exit_code == 2
    assert "init_primitives is for tree GP" in res.output and "Traceback" not in res.output
