"""guesses: expressions the first population starts with (known activations, the identity as a baseline)."""

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from gpengine.cli import main
from gpengine.config import build_config
from gpengine.errors import ConfigError
from gpengine.search import Search


def make(overrides=(), seed=0):
    cfg, opts = build_config(evaluator="symreg", overrides=["population=10", "generations=3", "tracking=false",
                                                           *overrides], seed=seed)
    return Search(cfg, opts)


def sig(out):
    return [(i.id, str(i.expr), i.operator, i.parent_ids, i.seed, repr(i.result.fitness)) for i in out.individuals]


@pytest.mark.parametrize("extra", [[], ["mode=steady_state"], ["mode=async", "async_window=3"], ["strategy=random"]])
def test_the_first_population_starts_with_the_guesses(extra):
    out = make(['guesses=["x * x", "x + 1.0"]', *extra]).run()
    first = out.individuals[:2]
    assert [str(i.expr) for i in first] == ["x * x", "x + 1.0"]
    assert all(i.operator == "init-guess" and i.parent_ids == () and i.generation == 0 for i in first)
    guessed = [i for i in out.individuals if i.operator == "init-guess"]
    assert len(guessed) == 2  # proposed once, never again
    assert len([i for i in out.individuals if i.generation == 0]) >= 10  # the rest of generation 0 is drawn


def test_a_single_expression_is_one_guess_and_fitness_is_the_evaluators():
    out = make(["guesses=x * x * x * x + x * x * x + x * x + x"]).run()  # symreg's default target
    assert str(out.individuals[0].expr) == "x * x * x * x + x * x * x + x * x + x"
    assert out.individuals[0].operator == "init-guess"
    assert out.best.fitness == pytest.approx(out.individuals[0].result.fitness)


def test_guesses_leave_the_search_reproducible_and_change_it():
    a = make(['guesses=["x * x"]'], seed=4).run()
    b = make(['guesses=["x * x"]'], seed=4).run()
    plain = make([], seed=4).run()
    assert sig(a) == sig(b)
    assert sig(a) != sig(plain)


def test_a_resumed_search_does_not_propose_its_guesses_again():
    full = make(['guesses=["x * x"]', "generations=4"], seed=2).run()
    part = make(['guesses=["x * x"]', "generations=2"], seed=2).run()
    resumed = Search.resume(part.search_id, overrides={"generations": 4}).run()
    assert sig(resumed) == sig(full)


def test_gaaf_takes_gene_shaped_guesses_only():
    base = ["strategy=gaaf", "primitives=gaaf", "target=sin(x)+x"]
    out = make([*base, 'guesses=["sin(x) + ident(x)"]']).run()
    assert out.individuals[0].operator == "init-guess"
    with pytest.raises(ConfigError, match=r"guesses: 'x' has no GAAF gene shape"):
        make([*base, "guesses=x"])


@pytest.mark.parametrize("value, message", [
    ('["x", "nosuch(x)"]', r"guesses: 'nosuch\(x\)' is not an expression of the"),
    ('["x +"]', r"guesses: 'x \+' is not an expression"),
    ("[1, 2]", r"guesses must be an expression or a list of expressions"),
    ('[""]', r"guesses must be an expression or a list of expressions"),
    ('["x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]', r"guesses \(11\) must not outnumber the population"),
])
def test_bad_guesses_are_clear_errors(value, message):
    with pytest.raises(ConfigError, match=message):
        make([f"guesses={value}"])


def test_the_cli_reports_a_bad_guess_in_one_line_with_status_2(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(main, ["run", "-e", "symreg", "--no-tracking", "-q", "--set", "guesses=sin(",
                                    "--set", "generations=1"])
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: guesses: 'sin(' is not an expression"), res.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("search.json"))  # nothing started


@given(st.one_of(st.text(max_size=20), st.lists(st.text(max_size=10), max_size=4), st.integers(), st.none()))
def test_any_guesses_value_is_accepted_as_strings_or_refused_with_a_config_error(value):
    from gpengine.config import SearchConfig

    try:
        cfg = SearchConfig(evaluator="symreg", guesses=value)
    except ConfigError as exc:
        assert str(exc).startswith("guesses")
    else:
        assert isinstance(cfg.guesses, tuple) and all(isinstance(g, str) and g.strip() for g in cfg.guesses)


def test_the_report_command_reproduces_the_guesses():
    import json
    import shlex

    import attrs

    from gpengine.config import SearchConfig
    from gpengine.report import reproduce

    saved = json.loads(json.dumps(attrs.asdict(SearchConfig(evaluator="symreg", guesses=["x", "atan(x)"]))))
    command, _ = reproduce(saved, {})
    args = shlex.split(command)
    sets = [args[i + 1] for i, a in enumerate(args) if a == "--set"]
    assert sets == ['guesses=["x", "atan(x)"]']
    cfg, _ = build_config(evaluator="symreg", overrides=sets)
    assert cfg.guesses == ("x", "atan(x)")
    plain = json.loads(json.dumps(attrs.asdict(SearchConfig(evaluator="symreg"))))
    assert "guesses" not in reproduce(plain, {})[0]
