import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpengine.config import SEARCH_KEYS, SearchConfig, build_config, parse_assignment, parse_value
from gpengine.errors import ConfigError


def test_values_read_as_toml_else_string():
    assert parse_value("3") == 3
    assert parse_value("0.5") == 0.5
    assert parse_value("true") is True
    assert parse_value('"quoted"') == "quoted"
    assert parse_value("[1, 2]") == [1, 2]
    assert parse_value("x**4+x**3+x**2+x") == "x**4+x**3+x**2+x"
    assert parse_value("nan") == "nan" and parse_value("inf") == "inf"


def test_set_routes_search_keys_and_evaluator_options():
    cfg, opts = build_config(
        evaluator="symreg",
        overrides=["population=30", "target=x**2", "evaluator.points=7", "mutation_weights.point=2.5"],
        evaluator_option_names=["target", "points"],
    )
    assert cfg.population == 30
    assert cfg.mutation_weights["point"] == 2.5
    assert opts == {"target": "x**2", "points": 7}


def test_file_then_overrides_then_flags(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('population = 40\nseed = 3\n[evaluator]\nname = "symreg"\npoints = 11\n')
    cfg, opts = build_config(config_file=f, overrides=["population=50"], seed=9)
    assert (cfg.evaluator, cfg.population, cfg.seed) == ("symreg", 50, 9)
    assert opts == {"points": 11}


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("population=1", "population must be a number >= 2"),
        ("population=99999999999999999999999", "population must be at most 1,000,000"),  # hung planning it
        ("mode=sideways", "mode must be one of generational, steady_state"),
        ("p_crossover=1.5", "p_crossover must be a probability"),
        ("selection=lexicase", "selection must be one of"),
        ("population=ten", "population must be an integer"),
        ("seed=-1", "seed must be a number >= 0 (got -1)"),
        ("budget=0", "budget must be a fraction in (0, 1]"),
        ("eval_timeout=0", "eval_timeout must be a number > 0 (got 0)"),
        ("mutation_weights.teleport=1", "unknown mutation 'teleport'"),
        ("backend=dask", "needs scheduler"),
        ("scheduler=tcp://h:8786", "scheduler=tcp://h:8786 is used only by backend 'dask' (got backend 'auto')"),
        ("nokey", "--set expects key=value"),
        ("mutation_weights.=2", "--set key 'mutation_weights.' has an empty name before or after a dot"),
        ("evaluator..lr=2", "--set key 'evaluator..lr' has an empty name before or after a dot"),
    ],
)
def test_bad_values_name_the_key(override, fragment):
    with pytest.raises(ConfigError, match=None) as err:
        build_config(evaluator="symreg", overrides=[override], evaluator_option_names=[])
    assert fragment in str(err.value)


@pytest.mark.parametrize("key", ["max_time", "max_cost", "eval_timeout", "target_fitness", "admission"])
@pytest.mark.parametrize("value", ["1e400", "-1e400"])
def test_an_infinite_number_is_refused_naming_the_key(key, value):
    # TOML reads 1e400 as inf; an infinite max_time or eval_timeout overflowed the clock mid-search
    with pytest.raises(ConfigError) as err:
        build_config(evaluator="symreg", overrides=[f"{key}={value}"], evaluator_option_names=[])
    assert str(err.value) == f"{key} must be a finite number (got {float(value)!r})"


@pytest.mark.parametrize("key", ["max_time", "max_cost", "eval_timeout", "target_fitness", "admission"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_non_finite_number_in_a_config_file_is_refused_naming_the_key(tmp_path, key, value):
    f = tmp_path / "c.toml"
    f.write_text(f'evaluator = "symreg"\n{key} = {value}\n')
    with pytest.raises(ConfigError, match=rf"^{key} must be a finite number \(got -?{value.lstrip('-')}\)$"):
        build_config(config_file=f)


def test_an_eval_timeout_longer_than_a_thread_can_wait_is_refused():
    import threading

    # concurrent.futures.wait raised OverflowError past threading.TIMEOUT_MAX (about 292 years)
    with pytest.raises(ConfigError, match=r"^eval_timeout must be at most \d+ seconds \(got 1e\+17\); leave it out"):
        build_config(evaluator="symreg", overrides=["eval_timeout=1e17"], evaluator_option_names=[])
    cfg, _ = build_config(evaluator="symreg", overrides=[f"eval_timeout={threading.TIMEOUT_MAX}"],
                          evaluator_option_names=[])
    assert cfg.eval_timeout == threading.TIMEOUT_MAX


def test_an_infinite_max_time_from_the_cli_is_one_line_exit_2(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from gpengine.cli import main

    monkeypatch.chdir(tmp_path)
    for args in (["--set", "max_time=1e400"], ["--set", "eval_timeout=1e400"]):
        res = CliRunner().invoke(main, ["run", "-e", "symreg", "-q", "--no-tracking", "--set", "population=4",
                                        "--set", "generations=0", *args])
        lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
        assert res.exit_code == 2 and len(lines) == 1 and "must be a finite number (got inf)" in lines[0], res.output
    assert not (tmp_path / "runs").exists()


def test_unknown_key_lists_both_sets_of_keys():
    with pytest.raises(ConfigError) as err:
        build_config(evaluator="symreg", overrides=["popsize=3"], evaluator_option_names=["target"])
    msg = str(err.value)
    assert "unknown key 'popsize'" in msg and "population" in msg and "target" in msg


def test_unknown_key_in_file(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('evaluator = "symreg"\npopsize = 3\n')
    with pytest.raises(ConfigError, match="unknown key 'popsize'"):
        build_config(config_file=f)


def test_no_evaluator_names_the_file_form_that_works_beside_evaluator_options(tmp_path):
    # following the hint must give a valid file: `evaluator = "NAME"` beside an [evaluator] table
    # of options (the README's layout) is a TOML error, `name = "NAME"` inside it is not
    f = tmp_path / "c.toml"
    f.write_text("population = 4\n[evaluator]\npoints = 11\n")
    with pytest.raises(ConfigError, match=r"no evaluator given .*name = \"NAME\" in the config file's \[evaluator\] table"):
        build_config(config_file=f)
    f.write_text('population = 4\n[evaluator]\nname = "symreg"\npoints = 11\n')
    config, options = build_config(config_file=f)
    assert config.evaluator == "symreg" and options == {"points": 11}


def test_missing_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        build_config(config_file=tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("population = = 3")
    with pytest.raises(ConfigError, match="not valid TOML"):
        build_config(config_file=bad)


def test_unreadable_config_file_is_one_line_exit_2(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from gpengine.cli import main

    (tmp_path / "latin1.toml").write_bytes("population = 4 # caf\xe9\n".encode("latin-1"))
    (tmp_path / "folder.toml").mkdir()
    monkeypatch.chdir(tmp_path)
    for path, message in [("latin1.toml", "error: config file latin1.toml is not valid TOML: 'utf-8' codec"),
                           ("", "error: cannot read config file .: Is a directory")]:
        res = CliRunner().invoke(main, ["run", "-e", "symreg", "-q", "--no-tracking", "--config", path])
        lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
        assert res.exit_code == 2 and len(lines) == 1 and lines[0].startswith(message), (path, res.output)
    with pytest.raises(ConfigError, match="cannot read config file"):
        build_config(config_file=tmp_path / "folder.toml")  # click's --config refuses it before this
    assert not (tmp_path / "runs").exists()


def test_flat_dict_has_every_key():
    flat = SearchConfig(evaluator="symreg").to_flat_dict()
    assert "mutation_weights.point" in flat
    assert set(k.split(".")[0] for k in flat) == set(SEARCH_KEYS)


@settings(max_examples=200, deadline=None)
@given(key=st.sampled_from(SEARCH_KEYS + ("zzz", "evaluator.q")), value=st.text(max_size=12))
def test_config_loader_fuzz_only_config_errors(key, value):
    """Whatever the text after `=`, the loader returns a config or raises ConfigError."""
    try:
        build_config(evaluator="symreg", overrides=[f"{key}={value}"], evaluator_option_names=["q"])
    except ConfigError:
        pass


@settings(max_examples=100, deadline=None)
@given(item=st.text(max_size=20))
def test_parse_assignment_fuzz(item):
    try:
        key, _ = parse_assignment(item)
        assert key == key.strip() and key
    except ConfigError:
        pass


def test_evaluator_defaults_yield_to_file_and_set(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('generations = 7\n')
    cfg, _ = build_config(evaluator="symreg", config_file=f, overrides=["max_time=60"],
                          evaluator_defaults={"population": 12, "generations": 3, "max_time": 3600.0})
    assert (cfg.population, cfg.generations, cfg.max_time) == (12, 7, 60)


def test_bnn_cifar_default_search_is_sized_for_an_hour():
    from gpengine.plugins import load_evaluator_class

    cls = load_evaluator_class("bnn-cifar")
    cfg, _ = build_config(evaluator="bnn-cifar", evaluator_defaults=cls.search_defaults)
    assert cfg.max_time == 3600.0 and cfg.mode == "steady_state"
    assert cls.prescreen and cls.persistent_cache and cls.isolate


def test_an_attrs_validator_failure_reads_as_one_line_naming_the_option():
    import attrs

    from gpengine.evaluator import build_options

    @attrs.define
    class Options:
        profile: str = attrs.field(default="auto", validator=attrs.validators.in_(("auto", "quick")))
        width: int = attrs.field(default=16, validator=attrs.validators.instance_of(int))

        depth: int = attrs.field(default=2, validator=attrs.validators.ge(1))
        rate: float = attrs.field(default=1.0, validator=attrs.validators.instance_of((int, float)))

    cases = [
        ("profile", "fast", "profile must be in ('auto', 'quick') (got 'fast')"),
        ("profile", "quik", "profile must be in ('auto', 'quick') (got 'quik'); did you mean 'quick'?"),
        ("width", "wide", "width must be an int (got 'wide')"),
        ("depth", -3, "depth must be >= 1 (got -3)"),
        ("rate", "x", "rate must be an int or a float (got 'x')"),
    ]
    for key, value, message in cases:
        with pytest.raises(ConfigError) as bad:
            build_options(Options, {key: value}, owner="Demo")
        assert str(bad.value) == f"bad option for Demo: {message}"


def test_an_evaluator_option_error_names_the_evaluator_as_users_type_it():
    from gpengine.plugins import make_evaluator

    # by its entry-point name, not its Python class (BnnCifar, Symreg)
    with pytest.raises(ConfigError) as bad:
        make_evaluator("bnn-cifar", {"width": 0, "download": "off", "data_dir": "/nonexistent"})
    assert str(bad.value) == "bad option for evaluator 'bnn-cifar': width must be >= 1 (got 0)"
    with pytest.raises(ConfigError) as unknown:
        make_evaluator("symreg", {"colour": 1})
    assert str(unknown.value).startswith("unknown option 'colour' for evaluator 'symreg' (allowed: ")
    import pickle  # as it comes back from a worker process

    again = pickle.loads(pickle.dumps(bad.value))
    assert type(again) is type(bad.value) and str(again) == str(bad.value)


@settings(max_examples=40, deadline=None)
@given(weights=st.dictionaries(
    st.sampled_from(["point", "subtree", "hoist", "shrink", "constant", "snap", "mutate-hoist"]),
    st.floats(min_value=0.5, max_value=10, allow_nan=False), max_size=3))
def test_setting_some_mutation_weights_keeps_the_others_at_the_search_defaults(weights):
    """One source of the default weights: the search's table is MutationWeights' defaults with
    exactly the given entries changed (the old table fell back to other, class-only defaults)."""
    from gpengine.variation import MutationWeights

    defaults = SearchConfig(evaluator="symreg").mutation_weights
    assert defaults == MutationWeights().as_table()
    overrides = [f"mutation_weights.{k}={v!r}" for k, v in weights.items()]
    cfg, _ = build_config(evaluator="symreg", overrides=overrides)
    given_short = {k.removeprefix("mutate-"): float(v) for k, v in weights.items()}
    assert cfg.mutation_weights == {**defaults, **given_short}
    assert MutationWeights.from_mapping(cfg.mutation_weights).as_table() == cfg.mutation_weights


def test_one_mutation_weight_set_leaves_hoist_and_shrink_at_half():
    cfg, _ = build_config(evaluator="symreg", overrides=["mutation_weights.point=2"])
    assert (cfg.mutation_weights["hoist"], cfg.mutation_weights["shrink"], cfg.mutation_weights["point"]) == (0.5, 0.5, 2.0)


def test_every_search_setting_is_documented_in_the_readme():
    from pathlib import Path

    import attrs

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    spelled = {"evaluator": "--evaluator", "seed": "--seed", "mutation_weights": "`mutation_weights.NAME`"}
    undocumented = [f.name for f in attrs.fields(SearchConfig) if spelled.get(f.name, f"`{f.name}`") not in readme]
    assert not undocumented, f"README.md's settings table lacks {undocumented}"
