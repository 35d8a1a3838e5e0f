"""The evaluator contract: what a fitness plugin receives and returns.

An evaluator is a class registered under the entry-point group
``gpengine.evaluators``. The engine builds it from keyword options (the
``--set`` values and the ``[evaluator]`` table of a config file), validated by
its nested attrs class ``Options``; then calls

    evaluate(expr, *, budget, seed) -> Result

in a worker process. Higher fitness is better. ``budget`` is the fraction of a
full evaluation in (0, 1] (for bnn-cifar it scales epochs; multi-fidelity
search passes small budgets first). ``seed`` is derived by the engine from the
search seed, the expression's canonical hash, the budget and the replicate
number, so a result never depends on worker count or order.

An evaluator never raises for a bad candidate: it returns ``Result.failed``
(or ``Result.rejected`` when it refuses without spending compute). It may
raise `gpengine.errors.GpengineError` from ``__init__`` for bad options or
missing data: those are the user's to fix and stop the search at once.
"""

from __future__ import annotations

import abc
import hashlib
import json
import math
import re
from typing import Any, ClassVar, Mapping

import attrs

from gpengine.errors import ConfigError, OptionError, did_you_mean
from gpengine.expr import Expr

# ok: measured in full. failed: no measurement (an error, NaN, a crash). rejected: refused before
# any compute (pre-screen, a candidate the evaluator will not run). aborted: stopped early as
# hopeless (bnn-cifar after one epoch at the degenerate floor), its fitness measured all the same.
OK, FAILED, REJECTED, ABORTED = "ok", "failed", "rejected", "aborted"
STATUSES = (OK, FAILED, REJECTED, ABORTED)
#: statuses whose fitness is a measurement (an aborted run measured too, only less)
MEASURED = (OK, ABORTED)


def _float_map(m: Mapping[str, Any]) -> dict[str, float]:
    return {str(k): float(v) for k, v in dict(m).items()}


def _curve_map(m: Mapping[str, Any]) -> dict[str, tuple[float, ...]]:
    return {str(k): tuple(float(v) for v in vs) for k, vs in dict(m).items()}


@attrs.frozen
class Result:
    """What one evaluation produced. `fitness` is NaN unless status is ok or aborted.

    `metrics` (name -> float) and `curves` (name -> floats, one per epoch) are logged to MLflow;
    `cost` is the seconds of evaluator work, measured by the engine when left at 0.
    """

    fitness: float = attrs.field(converter=float)
    status: str = attrs.field(default=OK, validator=attrs.validators.in_(STATUSES))
    message: str = ""
    metrics: Mapping[str, float] = attrs.field(factory=dict, converter=_float_map)
    curves: Mapping[str, tuple[float, ...]] = attrs.field(factory=dict, converter=_curve_map)
    cost: float = attrs.field(default=0.0, converter=float)  # seconds of evaluator work

    @property
    def ok(self) -> bool:
        """Whether the fitness is a real measurement (aborted runs measured too, just less)."""
        return self.status in MEASURED and math.isfinite(self.fitness)

    @staticmethod
    def failed(message: str, cost: float = 0.0, **metrics: float) -> "Result":
        """No measurement: `message` says why (it is what the user reads); `metrics` whatever was measured."""
        return Result(math.nan, FAILED, message, metrics, {}, cost)

    @staticmethod
    def rejected(message: str) -> "Result":
        """Refused without spending compute; `message` says why."""
        return Result(math.nan, REJECTED, message)


@attrs.frozen
class DatasetInfo:
    """What an evaluator measures on, for tracking (MLflow dataset input)."""

    name: str
    digest: str
    source: str = ""
    n_train: int = 0
    n_validation: int = 0


class Evaluator(abc.ABC):
    """Base class of evaluator plugins. Subclasses set the class attributes below."""

    #: one line shown by `gpengine evaluators`
    description: ClassVar[str] = ""
    #: name of the primitive set searched by default
    primitive_set: ClassVar[str] = "arith"
    #: what the budget scales, for humans ("epochs", "data fraction")
    fidelity_unit: ClassVar[str] = "full evaluation"
    #: smallest budget worth running
    min_budget: ClassVar[float] = 1.0
    #: version of the evaluator, recorded with every search
    version: ClassVar[str] = "0"
    #: search keys this evaluator suggests (the user's config and --set win)
    search_defaults: ClassVar[dict] = {}
    #: dedup proposals by "fingerprint" (costly evaluations) or "canonical" form (cheap ones)
    dedup: ClassVar[str] = "fingerprint"
    #: zero-cost pre-screen of activations before evaluation (gpengine.prescreen)
    prescreen: ClassVar[bool] = False
    #: remember results across searches and resumes (gpengine.result_store)
    persistent_cache: ClassVar[bool] = False
    #: evaluate in worker processes even with one job (timeouts and crashes isolated)
    isolate: ClassVar[bool] = False
    #: the expression is a 1-D activation worth plotting for every tracked individual
    activation_plots: ClassVar[bool] = False

    @attrs.define
    class Options:
        """No options by default; plugins define their own attrs class."""

    def __init__(self, *, primitives: str | None = None, **options: Any) -> None:
        # `primitives` is not a user option: the search passes the name of the set it
        # searches, so the evaluator computes with the same semantics.
        self.primitives = primitives or type(self).primitive_set
        self.options = build_options(self.Options, options, owner=type(self).__name__)

    @property
    def pset(self):
        from primitives import get_set

        return get_set(self.primitives)

    @abc.abstractmethod
    def evaluate(self, expr: Expr, *, budget: float = 1.0, seed: int = 0) -> Result:
        """Fitness of `expr`; never raises for a bad candidate."""

    def dataset(self) -> DatasetInfo | None:
        """The data fitness is measured on, if any."""
        return None

    def resolved_settings(self) -> dict[str, Any]:
        """The settings this evaluator really runs with, as JSON values (default: the options as given).

        Recorded with every search (MLflow params ``evaluator.resolved.<key>`` and
        ``evaluator_resolved`` in ``runs/<id>/search.json``), so a run stays unambiguous when
        defaults or profiles change between versions. Override it when options resolve to
        something else ("auto", a named profile, a device chosen at start).
        """
        return options_dict(self.options)

    def config_key(self) -> str:
        """Digest of everything that changes fitness values: keys the persistent cache.

        The data's digest is in it (`dataset()`): the options name a file, and a file edited
        between two searches must not answer the second with the first's fitness."""
        data = self.dataset()
        blob = json.dumps(
            {
                "evaluator": type(self).__qualname__,
                "version": self.version,
                "primitives": self.primitives,
                "options": options_dict(self.options),
                "data": data.digest if data is not None else None,
            },
            sort_keys=True,
            default=str,
        )
        return hashlib.blake2b(blob.encode(), digest_size=10).hexdigest()


def resolved_settings_of(evaluator: "Evaluator") -> dict[str, Any]:
    """`evaluator.resolved_settings()` as plain JSON values (what json cannot hold becomes its str)."""
    hook = getattr(evaluator, "resolved_settings", None)
    settings = hook() if hook is not None else {}
    if not isinstance(settings, Mapping):
        raise ConfigError(f"{type(evaluator).__name__}.resolved_settings() must return a dict "
                          f"(got {type(settings).__name__})")
    return json.loads(json.dumps({str(k): v for k, v in settings.items()}, default=str))


def options_dict(options: Any) -> dict[str, Any]:
    """An evaluator's options (an attrs instance, or already a mapping) as a plain dict."""
    return attrs.asdict(options) if attrs.has(type(options)) else dict(options)


def option_names(options_cls: type) -> list[str]:
    """The option keys an attrs `Options` class accepts, in declaration order."""
    return [f.name for f in attrs.fields(options_cls)]


def build_options(options_cls: type, values: Mapping[str, Any], owner: str = "evaluator") -> Any:
    """Build an Options instance; unknown keys and bad values raise OptionError naming the key."""
    allowed = option_names(options_cls)
    for key in values:
        if key not in allowed:
            raise OptionError(
                f"unknown option {key!r} for {{owner}}{did_you_mean(key, allowed)} "
                f"(allowed: {', '.join(allowed) if allowed else 'none'})", owner
            )
    try:
        return options_cls(**values)
    except ConfigError:  # a validator that already speaks to the user (a ValueError too)
        raise
    except (TypeError, ValueError) as exc:
        raise OptionError(f"bad option for {{owner}}: {_validator_message(exc)}", owner) from None


def _with_article(word: str) -> str:
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def _validator_message(exc: Exception) -> str:
    """attrs' validators raise with (message, attribute, allowed, value) as args: one line naming the option.

    Their messages read "'width' must be >= 1: -1" or "'width' must be <class 'int'> (got 'x' that
    is a <class 'str'>)"; users read "width must be >= 1 (got -1)", "width must be an int (got 'x')".
    """
    args = exc.args
    if len(args) == 4 and isinstance(args[0], str) and isinstance(getattr(args[1], "name", None), str):
        message, attribute, allowed, value = args
        name = attribute.name
        if isinstance(exc, TypeError) and isinstance(allowed, (type, tuple)):
            kinds = " or ".join(_with_article(k.__name__) for k in (allowed if isinstance(allowed, tuple) else (allowed,)))
            return f"{name} must be {kinds} (got {value!r})"
        message = message.replace(f"'{name}'", name, 1)
        suffix = f": {value}"
        if message.endswith(suffix):
            message = message[: -len(suffix)] + f" (got {value!r})"
        if isinstance(allowed, (tuple, list, set, frozenset)):  # attrs' in_: a misspelt choice
            message += did_you_mean(value, allowed)
        return message
    first = args[0] if args else exc
    if not isinstance(first, str):
        return str(exc)
    bound = re.fullmatch(r"'(\w+)' must be ([<>=!]+ \S+): (.*)", first)  # attrs' ge, gt, le, lt
    return f"{bound[1]} must be {bound[2]} (got {bound[3]})" if bound else first
