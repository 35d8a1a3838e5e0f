"""The evaluator contract as a reusable check suite (gplearn's `check_estimator` idea).

A plugin author runs it in their own tests::

    from gpengine.contract import check_evaluator

    def test_my_evaluator_honours_the_contract():
        check_evaluator("my-eval", {"points": 32})   # raises ContractError listing what failed

and `gpengine check-evaluator NAME` runs the same checks from the shell. Each
check is small and named, so a failure says which promise is broken:

    loads          the entry point names an Evaluator subclass with the class attributes
    options        unknown options, and a string given to a number option (a mistyped
                   `--set points=abc`), raise ConfigError (one line for the user)
    builds         the evaluator builds from the given options (a GpengineError there, such
                   as a bad option value or missing data, is raised: it is the user's to fix)
    evaluates      evaluate(expr, budget=1.0, seed=0) returns a Result; status ok has a finite fitness
    pickle         the evaluator and its Result survive pickle (they cross processes)
    deterministic  the same expression and seed give the same fitness, also after pickling
    budget         min_budget and 1.0 are both accepted
    failure        an expression that is NaN/inf everywhere comes back as a failed Result, not an exception

The suite uses only the numpy side of the engine: it never imports torch, so
it runs wherever the engine runs.
"""

from __future__ import annotations

import math
import pickle
import re
from typing import Any, Callable, Iterable, Mapping

import attrs
import numpy as np

from gpengine.errors import ConfigError, GpengineError
from gpengine.evaluator import FAILED, OK, REJECTED, Evaluator, Result
from gpengine.expr import Expr

UNKNOWN_OPTION = "gpengine_contract_no_such_option"
NOT_A_NUMBER = "gpengine-contract-not-a-number"  # what `--set points=abc` hands a number option
CHECKS = ("loads", "options", "builds", "evaluates", "pickle", "deterministic", "budget", "failure")
HUGE = 1e308  # overflows every float format once doubled or squared


class ContractError(AssertionError):
    """Raised by `check_evaluator` when a plugin breaks the contract; lists every failed check."""


@attrs.frozen
class Check:
    name: str
    passed: bool
    message: str = ""

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'}  {self.name:14s} {self.message}".rstrip()


#: how a check reports itself: record(name, passed, message) -> passed
Record = Callable[[str, bool, str], bool]


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def sample_expr(pset: Any) -> Expr:
    """A small non-trivial expression of the set: u(x) + x, or u(x), or x."""
    unary = [p for p in pset if p.arity == 1 and not p.params and p.name not in ("ident", "zero", "neg")]
    inner = Expr.apply(unary[0].name, Expr.x()) if unary else Expr.x()
    add = pset.get("add")
    if add is not None and add.arity == 2 and not add.params:
        return Expr.apply("add", inner, Expr.x())
    return inner


def failing_expr(pset: Any) -> Expr | None:
    """An expression of the set that the numpy forms make NaN or infinite on the whole probe grid.

    Tries every primitive on huge constants (1e308 doubled, squared, exponentiated
    overflows); None when the set has no way to overflow.
    """
    from gpengine.numeric import evaluate

    probe = np.linspace(-3.0, 3.0, 61)
    candidates = []
    for prim in pset:
        args = [Expr.constant(HUGE)] * prim.arity
        e = Expr.apply(prim.name, *args)
        candidates.append(e)
        if prim.arity == 2:
            candidates.append(Expr.apply(prim.name, Expr.x(), e))
    for prim in pset:  # depth two: f(f(huge)) catches e.g. square(square(.)) in float64
        if prim.arity == 1:
            candidates.append(Expr.apply(prim.name, Expr.apply(prim.name, Expr.constant(HUGE))))
    for e in candidates:
        try:
            y = evaluate(e, pset, probe)
        except Exception:  # noqa: BLE001 - a primitive that rejects the input is no candidate
            continue
        if not np.isfinite(y).any():
            return e
    return None


def _load(target: str | type) -> tuple[str, type]:
    from gpengine.plugins import check_evaluator_class, load_evaluator_class

    if isinstance(target, str):
        return target, load_evaluator_class(target)
    name = getattr(target, "__qualname__", str(target))
    check_evaluator_class(name, target)
    return name, target


def _class_attributes(cls: type) -> list[str]:
    from primitives import ENTRY_POINT_GROUP, set_names

    problems = []
    if not isinstance(cls.description, str) or not cls.description.strip():
        problems.append("description must be a one-line string")
    if cls.primitive_set not in set_names():
        problems.append(f"primitive_set {cls.primitive_set!r} is not a known set ({', '.join(set_names())}; "
                        f"a plugin adds one under the entry-point group {ENTRY_POINT_GROUP!r})")
    if not isinstance(cls.fidelity_unit, str):
        problems.append("fidelity_unit must be a string")
    mb = cls.min_budget
    if isinstance(mb, bool) or not isinstance(mb, (int, float)) or not 0 < mb <= 1:
        problems.append(f"min_budget must be in (0, 1] (got {mb!r})")
    if not isinstance(cls.version, str):
        problems.append("version must be a string")
    if not attrs.has(cls.Options):
        problems.append("Options must be an attrs class")
    return problems


def run_checks(
    target: str | type,
    options: Mapping[str, Any] | None = None,
    *,
    expr: Expr | str | None = None,
    failing: Expr | str | None = None,
    primitives: str | None = None,
    echo: Callable[[Check], None] | None = None,
) -> list[Check]:
    """Every check in `CHECKS` order, each reported; a check that cannot run (no class, no
    evaluator) fails saying why, so a report always has every line."""
    results: list[Check] = []

    def record(name: str, passed: bool, message: str = "") -> bool:
        c = Check(name, passed, message)
        results.append(c)
        if echo is not None:
            echo(c)
        return passed

    def not_run(reason: str) -> list[Check]:
        for name in CHECKS[len(results):]:
            record(name, False, f"not run: {reason}")
        return results

    options = dict(options or {})
    if isinstance(target, str):
        from gpengine.plugins import evaluator_names, unknown_evaluator

        if target not in evaluator_names():  # a typo is the user's to fix, not a broken plugin
            raise unknown_evaluator(target)
    try:
        name, cls = _load(target)
    except GpengineError as exc:
        record("loads", False, str(exc))
        return not_run("the class did not load")
    problems = _class_attributes(cls)
    if not record("loads", not problems, "; ".join(problems) or f"{cls.__module__}.{cls.__qualname__}"):
        return not_run("the class did not load")

    from primitives import get_set

    pset = get_set(primitives or cls.primitive_set)
    _check_options(cls, options, record)
    try:
        ev = cls(primitives=pset.name, **options)
        ev.config_key()
        ev.dataset()
    except GpengineError:
        raise  # bad options or missing data: the user's to fix (one line, exit 2)
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        record("builds", False, f"{type(exc).__name__}: {exc}")
        return not_run("the evaluator did not build")
    record("builds", True, f"options {options}" if options else "default options")

    from gpengine.expr_text import parse

    sample = parse(expr, pset) if isinstance(expr, str) else (expr or sample_expr(pset))
    first = _check_evaluates(ev, sample, record)
    # the later checks run even when evaluation broke: each says what else is wrong
    copy = _check_pickle(ev, first, record)
    _check_deterministic(ev, copy, sample, first, record)
    _check_budget(ev, cls, sample, first, record)
    fail_expr = parse(failing, pset) if isinstance(failing, str) else (failing or failing_expr(pset))
    _check_failure(ev, pset, fail_expr, record)
    return results


def _check_evaluates(ev: Evaluator, sample: Expr, record: Record) -> Result | BaseException:
    first = _evaluate(ev, sample, 1.0, 0)
    message = _describe(sample, first)
    honest = isinstance(first, Result) and not (first.status == OK and not math.isfinite(first.fitness))
    if isinstance(first, Result) and not honest:
        message += "; status ok needs a finite fitness (return Result.failed(reason) instead)"
    elif isinstance(first, Result) and not first.ok:  # a harmless expression: failing it, a plugin fails all
        message += "; a harmless expression must get a fitness (pass --expr for one this evaluator can score)"
    record("evaluates", isinstance(first, Result) and first.ok, message)
    return first


def _check_pickle(ev: Evaluator, first: Result | BaseException, record: Record) -> Evaluator | None:
    """Workers receive the evaluator by pickle and send Results back: both must round-trip.
    Returns the unpickled evaluator (None when it did not survive)."""
    copy = None
    try:
        copy = pickle.loads(pickle.dumps(ev))
        if isinstance(first, Result):
            back = pickle.loads(pickle.dumps(first))
            ok = back == first or (_same(back.fitness, first.fitness) and back.status == first.status)
            record("pickle", ok, "evaluator and Result round-trip" if ok else "the Result changes through pickle")
        else:
            record("pickle", True, "evaluator round-trips (no Result to try: see evaluates)")
    except Exception as exc:  # noqa: BLE001
        record("pickle", False, f"{type(exc).__name__}: {exc} (workers receive the evaluator by pickle)")
    return copy


def _check_deterministic(ev: Evaluator, copy: Evaluator | None, sample: Expr, first: Result | BaseException,
                         record: Record) -> None:
    again = _evaluate(ev, sample, 1.0, 0)
    other = _evaluate(copy, sample, 1.0, 0) if copy is not None else again
    fits = [r.fitness if isinstance(r, Result) else math.nan for r in (first, again, other)]
    results_only = all(isinstance(r, Result) for r in (first, again, other))
    same = results_only and _same(fits[0], fits[1]) and _same(fits[0], fits[2])
    record("deterministic", same, f"seed 0 gives {fits[0]!r} every time" if same
           else f"seed 0 gave fitness {fits} (same instance twice, then a pickled copy)" if results_only
           else "evaluate did not return a Result every time (see evaluates)")


def _check_budget(ev: Evaluator, cls: type, sample: Expr, first: Result | BaseException, record: Record) -> None:
    budgets = sorted({float(cls.min_budget), 1.0})
    outcome = {b: (first if b == 1.0 else _evaluate(ev, sample, b, 1)) for b in budgets}
    # status ok with a NaN fitness at min_budget: successive halving's low rung would rank nothing
    bad = {b: r for b, r in outcome.items()
           if not isinstance(r, Result) or r.cost < 0 or (r.status == OK and not math.isfinite(r.fitness))}
    record("budget", not bad, f"budgets {budgets} accepted" if not bad
           else "; ".join(f"budget {b}: {_describe(sample, r)}" for b, r in bad.items()))


def _check_failure(ev: Evaluator, pset: Any, fail_expr: Expr | None, record: Record) -> None:
    if fail_expr is None:
        record("failure", True, f"skipped: no expression of set {pset.name!r} overflows (pass a failing expression)")
        return
    r = _evaluate(ev, fail_expr, 1.0, 0)
    ok = isinstance(r, Result) and r.status in (FAILED, REJECTED) and not r.ok
    msg = _describe(fail_expr, r)
    if isinstance(r, Result) and not ok:
        msg += " (expected Result.failed(reason) or Result.rejected(reason))"
    record("failure", ok, msg)


def _check_options(cls: type, options: dict[str, Any], record: Record) -> None:
    try:
        cls(**{**options, UNKNOWN_OPTION: 1})
    except ConfigError:
        pass
    except Exception as exc:  # noqa: BLE001
        record("options", False, f"unknown option raised {type(exc).__name__}, not ConfigError: {exc}")
        return
    else:
        record("options", False, "an unknown option was accepted silently (call Evaluator.__init__ with the options)")
        return
    # A mistyped number reached evaluate() unchecked: every candidate failed, or a traceback.
    numbers = number_options(cls.Options) if attrs.has(cls.Options) else []
    problems = []
    for name in numbers:
        try:
            cls(**{**options, name: NOT_A_NUMBER})
        except ConfigError:
            continue
        except Exception as exc:  # noqa: BLE001
            problems.append(f"{name}={NOT_A_NUMBER!r} raised {type(exc).__name__}, not ConfigError: {exc}")
        else:
            problems.append(f"{name}={NOT_A_NUMBER!r} was accepted (give it an attrs validator, "
                            "e.g. instance_of(int))")
    checked = f"; a string for {', '.join(numbers)} -> ConfigError" if numbers else ""
    record("options", not problems, "; ".join(problems) or f"unknown option -> ConfigError{checked}")


def number_options(options_cls: type) -> list[str]:
    """Options declared int or float (or None): by annotation, else by a numeric default."""
    names = []
    for field in attrs.fields(options_cls):
        declared = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", None)
        if field.type is not None and not isinstance(field.type, (str, type)):
            declared = repr(field.type)  # int | None, typing.Optional[float]
        if declared is not None:
            kinds = set(re.findall(r"\w+", declared)) - {"None", "typing", "Optional", "Union", "NoneType"}
            numeric = bool(kinds) and kinds <= {"int", "float"}
        else:
            default = field.default
            numeric = isinstance(default, (int, float)) and not isinstance(default, bool)
        if numeric:
            names.append(field.name)
    return names


def _evaluate(ev: Evaluator, expr: Expr, budget: float, seed: int) -> Result | BaseException:
    try:
        return ev.evaluate(expr, budget=budget, seed=seed)
    except Exception as exc:  # noqa: BLE001 - the contract says never raise for a candidate
        return exc


def _describe(expr: Expr, r: Result | BaseException) -> str:
    if isinstance(r, BaseException):
        return f"{expr}: raised {type(r).__name__}: {r}"
    if not isinstance(r, Result):
        return f"{expr}: returned {type(r).__name__}, not a gpengine Result"
    text = f"{expr}: {r.status} fitness {r.fitness:.6g}"
    return text + (f" ({r.message})" if r.message else "")


def check_evaluator(
    target: str | type,
    options: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> list[Check]:
    """Run every check; raise ContractError naming each failure. Returns the checks when all pass."""
    checks = run_checks(target, options, **kwargs)
    failed = [c for c in checks if not c.passed]
    if failed:
        raise ContractError("evaluator contract broken:\n" + "\n".join(c.line() for c in failed))
    return checks


def all_passed(checks: Iterable[Check]) -> bool:
    return all(c.passed for c in checks)
