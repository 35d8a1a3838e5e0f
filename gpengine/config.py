"""Search configuration: TOML file + `--set key=value` overrides, validated.

Search keys live at the top level of the TOML file; the evaluator either as
`evaluator = "NAME"` or as an `[evaluator]` table with `name = "NAME"` and its
options. On the command line `--set key=value` goes to the search
when `key` is a search key, and to the evaluator otherwise (or explicitly as
`evaluator.key=value`). Values are read as TOML (`3`, `0.5`, `true`,
`"text"`, `[1, 2]`); anything TOML cannot read is taken as a plain string,
so `--set target=x**2+x` works unquoted.

Every bad key or value raises `ConfigError` naming the key and what is allowed.
"""

from __future__ import annotations

import math
import threading
import tomllib
from pathlib import Path
from typing import Any, Iterable, Mapping

import attrs

from gpengine.errors import ConfigError, did_you_mean
from gpengine.mutation_weights import MutationWeights

MODES = ("generational", "steady_state", "async")
FIDELITIES = ("none", "sh")
STRATEGIES = ("tree", "random", "gaaf")
SELECTIONS = ("tournament", "nsga2", "fitness_proportionate")
INITS = ("ramped", "grow", "full", "gaaf3", "gaaf6")
BACKENDS = ("auto", "sequential", "loky", "dask")
DEDUPS = ("fingerprint", "canonical", "none")
CHILD_RUNS = ("auto", "all", "notable")


def _choice(options: tuple[str, ...]):
    def check(inst, attribute, value):
        if value not in options:
            raise ConfigError(f"{attribute.name} must be one of {', '.join(options)} (got {value!r})"
                              f"{did_you_mean(value, options)}")

    return check


def _finite(attribute, value) -> None:
    """Refuse inf and nan (TOML's `inf`, `nan`, and `1e400`, which it reads as inf): nan passes every
    `value < low` check, and an infinite time limit or timeout overflowed the clock mid-search."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{attribute.name} must be a finite number (got {value!r})")


def _at_least(low: float, allow_none: bool = False):
    def check(inst, attribute, value):
        if value is None and allow_none:
            return
        _finite(attribute, value)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low:
            raise ConfigError(f"{attribute.name} must be a number >= {low} (got {value!r})")

    return check


def _at_most(high: int):
    def check(inst, attribute, value):
        if value > high:
            raise ConfigError(f"{attribute.name} must be at most {high:,} (got {value:,})")

    return check


#: a population is planned and held in memory whole: 10**22 (a slip of the keyboard) hung until memory ran out
MAX_POPULATION = 1_000_000


def _positive_or_none(inst, attribute, value):
    if value is None:
        return
    _finite(attribute, value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"{attribute.name} must be a number > 0 (got {value!r})")


def _timeout(inst, attribute, value):
    """A positive number of seconds a thread can wait for: the executor waits on its futures that long,
    and a longer wait (about 292 years) is an OverflowError inside concurrent.futures."""
    _positive_or_none(inst, attribute, value)
    if value is not None and value > threading.TIMEOUT_MAX:
        raise ConfigError(f"{attribute.name} must be at most {threading.TIMEOUT_MAX:.0f} seconds (got {value:g}); "
                          f"leave it out for no timeout")


def _probability(inst, attribute, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"{attribute.name} must be a probability in [0, 1] (got {value!r})")


def _int(inst, attribute, value):
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{attribute.name} must be an integer (got {value!r})")


def _optional_str(inst, attribute, value):
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{attribute.name} must be a string (got {value!r})")


def _weights_table(value: Any) -> dict[str, float]:
    """The full table of weights: names left out keep MutationWeights' defaults (the one source of them),
    so `--set mutation_weights.point=2` changes that weight alone."""
    if not isinstance(value, Mapping):
        raise ConfigError(f"mutation_weights must be a table of mutation = weight (got {value!r})")
    return MutationWeights.from_mapping(value).as_table()  # raises ConfigError naming a bad entry


def _budget(inst, attribute, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value <= 1.0:
        raise ConfigError(f"{attribute.name} must be a fraction in (0, 1] (got {value!r})")


def _optional_budget(inst, attribute, value):
    if value is not None:
        _budget(inst, attribute, value)


def _optional_bool(inst, attribute, value):
    if value is not None and not isinstance(value, bool):
        raise ConfigError(f"{attribute.name} must be true or false (got {value!r})")


def _optional_number(inst, attribute, value):
    if value is None:
        return
    _finite(attribute, value)  # a nan target is never reached, a nan admission floor admits nothing
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{attribute.name} must be a number (got {value!r})")


def _guesses(value: Any) -> tuple[str, ...]:
    """One expression (a string) or a list of them; parsed against the primitive set when the search starts."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"guesses must be an expression or a list of expressions (got {value!r})")
    return tuple(value)


@attrs.frozen(kw_only=True)
class SearchConfig:
    """Everything that defines a search except the evaluator's own options."""

    evaluator: str = attrs.field(validator=_optional_str)
    seed: int = attrs.field(default=0, validator=[_int, _at_least(0)])  # numpy's generators take no negative seed
    # population and budget
    population: int = attrs.field(default=100, validator=[_int, _at_least(2), _at_most(MAX_POPULATION)])
    generations: int = attrs.field(default=20, validator=[_int, _at_least(0)])
    max_evaluations: int | None = attrs.field(default=None, validator=[_int, _at_least(1, allow_none=True)])
    max_time: float | None = attrs.field(default=None, validator=_at_least(0, allow_none=True))
    # stop once the best reaches it
    target_fitness: float | None = attrs.field(default=None, validator=_optional_number)
    # strategy
    mode: str = attrs.field(default="generational", validator=_choice(MODES))
    strategy: str = attrs.field(default="tree", validator=_choice(STRATEGIES))
    selection: str = attrs.field(default="tournament", validator=_choice(SELECTIONS))
    tournament_size: int = attrs.field(default=3, validator=[_int, _at_least(1)])
    elitism: int = attrs.field(default=1, validator=[_int, _at_least(0)])
    p_crossover: float = attrs.field(default=0.8, validator=_probability)
    mutation_weights: Mapping[str, float] = attrs.field(
        factory=lambda: MutationWeights().as_table(), converter=_weights_table
    )
    init: str = attrs.field(default="ramped", validator=_choice(INITS))
    init_min_depth: int = attrs.field(default=2, validator=[_int, _at_least(1)])
    init_max_depth: int = attrs.field(default=4, validator=[_int, _at_least(1)])
    # expressions the first population starts with, before random ones (PySR calls them guesses):
    # known good ones, the identity as a baseline measured in the same search, a previous search's best
    guesses: tuple[str, ...] = attrs.field(default=(), converter=_guesses)
    # then every primitive applied to x once (f(x), g(x, x)), in random order, before random trees
    init_primitives: bool = attrs.field(default=False, validator=_optional_bool)
    max_depth: int = attrs.field(default=8, validator=[_int, _at_least(1)])
    max_size: int = attrs.field(default=40, validator=[_int, _at_least(1)])
    p_const: float = attrs.field(default=0.2, validator=_probability)
    primitives: str | None = attrs.field(default=None, validator=_optional_str)
    offspring: int | None = attrs.field(default=None, validator=[_int, _at_least(1, allow_none=True)])
    hall_of_fame: int = attrs.field(default=10, validator=[_int, _at_least(1)])
    # evaluation
    budget: float = attrs.field(default=1.0, validator=_budget)
    max_cost: float | None = attrs.field(default=None, validator=_at_least(0, allow_none=True))  # evaluator seconds
    # multi-fidelity (gpengine.fidelity): "sh" = successive halving from min_budget up to budget
    fidelity: str = attrs.field(default="none", validator=_choice(FIDELITIES))
    eta: int = attrs.field(default=3, validator=[_int, _at_least(2)])
    min_budget: float | None = attrs.field(default=None, validator=_optional_budget)  # None: the evaluator's
    # noise (gpengine.noise): the best `reeval_top` members get `replicates` seeds in all
    replicates: int = attrs.field(default=1, validator=[_int, _at_least(1)])
    reeval_top: int = attrs.field(default=3, validator=[_int, _at_least(1)])
    # GAAF GA (gpengine.gaaf_ga): only candidates scoring above it enter; None: the evaluator's degenerate floor
    admission: float | None = attrs.field(default=None, validator=_optional_number)
    # mode=async (gpengine.steady_async): offspring in flight at once (None: jobs); deterministic:
    # completions processed in submission order, so (seed, async_window) fixes the search for any jobs
    async_window: int | None = attrs.field(default=None, validator=[_int, _at_least(1, allow_none=True)])
    deterministic: bool = attrs.field(default=True, validator=_optional_bool)
    # None: the evaluator decides (fingerprints for costly training, canonical form for cheap fitness)
    dedup: str | None = attrs.field(default=None, validator=attrs.validators.optional(_choice(DEDUPS)))
    duplicate_retries: int = attrs.field(default=3, validator=[_int, _at_least(0)])
    prescreen: bool | None = attrs.field(default=None, validator=_optional_bool)
    # persistent result cache; None: the evaluator decides
    cache: bool | None = attrs.field(default=None, validator=_optional_bool)
    # > 0: with 0 every evaluation was late before it started, and the worker pool, replaced at once
    # each time, printed the tracebacks of its manager threads
    eval_timeout: float | None = attrs.field(default=None, validator=_timeout)
    # worker processes even for one job; None: the evaluator decides
    isolate: bool | None = attrs.field(default=None, validator=_optional_bool)
    max_failures: int = attrs.field(default=10, validator=[_int, _at_least(1)])  # in a row, then stop
    jobs: int = attrs.field(default=1, validator=[_int, _at_least(1)])
    backend: str = attrs.field(default="auto", validator=_choice(BACKENDS))
    scheduler: str | None = attrs.field(default=None, validator=_optional_str)
    # output: a Search writes them itself, from the CLI or from Python (gpengine.outputs)
    tracking: bool = attrs.field(default=True, validator=_optional_bool)
    tracking_uri: str | None = attrs.field(default=None, validator=_optional_str)
    child_runs: str = attrs.field(default="auto", validator=_choice(CHILD_RUNS))
    runs_dir: str = attrs.field(default="runs", validator=_optional_str)
    journal: bool = attrs.field(default=True, validator=_optional_bool)

    def __attrs_post_init__(self) -> None:
        if self.init_min_depth > self.init_max_depth:
            raise ConfigError(
                f"init_min_depth ({self.init_min_depth}) must not exceed init_max_depth ({self.init_max_depth})"
            )
        from gpengine.init import check_limits

        check_limits(self.init, self.strategy, self.init_min_depth, self.init_max_depth, self.max_depth, self.max_size)
        if len(self.guesses) > self.population:
            raise ConfigError(f"guesses ({len(self.guesses)}) must not outnumber the population ({self.population})")
        if self.elitism >= self.population:
            raise ConfigError(f"elitism ({self.elitism}) must be smaller than population ({self.population})")
        if self.backend == "dask" and not self.scheduler:
            raise ConfigError("backend 'dask' needs scheduler=tcp://HOST:PORT")
        if self.scheduler and self.backend != "dask":  # it would be ignored, and the search run locally
            raise ConfigError(f"scheduler={self.scheduler} is used only by backend 'dask' "
                              f"(got backend {self.backend!r}): add --backend dask, or drop the scheduler")
        if self.mode == "async" and self.backend == "dask":
            raise ConfigError("mode 'async' runs on backend auto, sequential or loky (got backend 'dask')")
        if self.init_primitives and self.strategy == "gaaf":
            raise ConfigError("init_primitives is for tree GP and random search: strategy 'gaaf' draws only "
                              "its gene shapes (GAAF's 3 or 6 genes)")
        if self.strategy == "gaaf" and self.init in ("grow", "full"):
            raise ConfigError(f"init must be gaaf3 or gaaf6 with strategy 'gaaf' (got {self.init!r})")

    def to_flat_dict(self) -> dict[str, Any]:
        out = {}
        for key, value in attrs.asdict(self).items():
            if isinstance(value, dict):
                for k, v in value.items():
                    out[f"{key}.{k}"] = v
            else:
                out[key] = value
        return out


SEARCH_KEYS = tuple(f.name for f in attrs.fields(SearchConfig))
#: where a search stops, the only keys `gpengine resume --set` may change: raising one continues a
#: search that ended by it; anything else would make the journal another search's
LIMIT_KEYS = ("generations", "max_time", "max_evaluations", "max_cost", "target_fitness")


def parse_value(text: str) -> Any:
    """A `--set` value: TOML scalar/array if it reads as one, else the plain string.

    TOML's bare `nan` and `inf` stay strings: `--set fault=nan` means the word.
    """
    if text.strip().lstrip("+-") in ("nan", "inf"):
        return text
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_assignment(item: str) -> tuple[str, Any]:
    if "=" not in item:
        raise ConfigError(f"--set expects key=value, got {item!r}")
    key, _, value = item.partition("=")
    key = key.strip()
    if not key:
        raise ConfigError(f"--set expects key=value, got {item!r}")
    if "" in key.split("."):  # "mutation_weights.=2" names no entry of the table
        raise ConfigError(f"--set key {key!r} has an empty name before or after a dot (got {item!r})")
    return key, parse_value(value.strip())


def evaluator_name_in(data: dict[str, Any]) -> str | None:
    section = data.get("evaluator")
    if isinstance(section, dict):
        section = section.get("name")
    return section if isinstance(section, str) else None


def read_toml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        with p.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {p}") from None
    except OSError as exc:  # a folder (`--config ''` names the working directory), no permission
        raise ConfigError(f"cannot read config file {p}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:  # TOML is UTF-8 text
        raise ConfigError(f"config file {p} is not valid TOML: {exc}") from None


def _set_nested(target: dict[str, Any], key: str, value: Any) -> None:
    """`mutation_weights.point=2` updates one entry of a table."""
    head, _, rest = key.partition(".")
    if rest:
        table = dict(target.get(head) or {})
        table[rest] = value
        target[head] = table
    else:
        target[key] = value


def build_config(
    *,
    evaluator: str | None = None,
    config_file: str | Path | None = None,
    overrides: Iterable[str] = (),
    evaluator_option_names: Iterable[str] | None = None,
    evaluator_defaults: Mapping[str, Any] | None = None,
    **explicit: Any,
) -> tuple[SearchConfig, dict[str, Any]]:
    """Merge the evaluator's `search_defaults`, the file, `--set` overrides and explicit arguments
    (CLI flags), each over the one before, into a validated config.

    The one place where an evaluator's `search_defaults` apply, for the CLI and the library alike;
    `evaluator_defaults` replaces them (a test double, say). Returns the search config and the
    evaluator options (validated later by the evaluator's own Options class;
    `evaluator_option_names`, when given, lets unknown keys fail here with both lists of allowed keys).
    """
    search: dict[str, Any] = {}  # what the user gave; the evaluator's suggestions go under it below
    options: dict[str, Any] = {}
    if config_file is not None:
        data = read_toml(config_file)
        section = data.pop("evaluator", None)
        if isinstance(section, str):  # evaluator = "symreg"
            search["evaluator"] = section
        elif isinstance(section, dict):  # [evaluator] name = "symreg", then its options
            section = dict(section)
            if "name" in section:
                search["evaluator"] = section.pop("name")
            options.update(section)
        elif section is not None:
            raise ConfigError(f"evaluator in {config_file} must be a name or a table (got {section!r})")
        for key, value in data.items():
            if key not in SEARCH_KEYS:
                raise ConfigError(
                    f"unknown key {key!r} in {config_file}{did_you_mean(key, SEARCH_KEYS)} "
                    f"(search keys: {', '.join(SEARCH_KEYS)}; "
                    "evaluator options go in the [evaluator] table)"
                )
            search[key] = value
    allowed_options = set(evaluator_option_names) if evaluator_option_names is not None else None
    for item in overrides:
        key, value = parse_assignment(item)
        if key.startswith("evaluator."):
            options[key[len("evaluator.") :]] = value
        elif key.split(".")[0] in SEARCH_KEYS:
            _set_nested(search, key, value)
        elif allowed_options is None or key in allowed_options:
            options[key] = value
        else:
            raise ConfigError(
                f"unknown key {key!r}{did_you_mean(key, [*SEARCH_KEYS, *sorted(allowed_options)])} "
                f"(search keys: {', '.join(SEARCH_KEYS)}; "
                f"evaluator options: {', '.join(sorted(allowed_options)) or 'none'})"
            )
    for key, value in explicit.items():
        if value is not None:
            search[key] = value
    if evaluator is not None:
        search["evaluator"] = evaluator
    if "evaluator" not in search:
        # the file form the README shows; a top-level `evaluator = "NAME"` beside an [evaluator] table is a TOML error
        raise ConfigError("no evaluator given (use --evaluator NAME, or name = \"NAME\" in the config file's "
                          "[evaluator] table)")
    if evaluator_defaults is None:
        evaluator_defaults = search_defaults_of(search["evaluator"])
    search = _under(evaluator_defaults, search)
    try:
        cfg = SearchConfig(**search)
    except TypeError as exc:  # e.g. a table where a number belongs
        raise ConfigError(f"bad configuration: {exc}") from None
    return cfg, options


def search_defaults_of(evaluator: Any) -> dict[str, Any]:
    """The search keys evaluator `evaluator` suggests (its class's `search_defaults`); {} for a
    name that is not a string (SearchConfig then says what is wrong with it)."""
    if not isinstance(evaluator, str):
        return {}
    from gpengine.plugins import load_evaluator_class

    return dict(getattr(load_evaluator_class(evaluator), "search_defaults", None) or {})


def _under(defaults: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """`given` over `defaults`; a table (mutation_weights) merges entry by entry."""
    out = dict(defaults)
    for key, value in given.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out
