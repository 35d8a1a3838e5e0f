"""`gpengine evaluate`: one expression, one evaluator, outside any search.

A search's score is one noisy run, so what counts for a found activation is its retraining with
fresh seeds: `--seed` repeats (`--seed 100 --seed 101 --seed 102`), and the command prints each
seed's result and their mean and sample standard deviation. Each evaluation is recorded as a
search records it (`guarded_evaluate`: an evaluator that raises gives a failed result), and shows
its progress as a bar on stderr where the evaluator reports it (`gpengine.eval_progress`).
"""

from __future__ import annotations

import json
import math
import statistics
from typing import Any, Sequence

import click

from gpengine.seeds import MAX_SEED


@click.command()
@click.argument("expression")
@click.option("--evaluator", "-e", required=True, help="Evaluator plugin name.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Set an evaluator option, KEY or evaluator.KEY (repeatable; search keys do not apply here).")
@click.option("--seed", "seeds", type=click.IntRange(0, MAX_SEED), multiple=True,
              help="Evaluation seed, in the range a search derives them in (default 0). Repeat it to "
                   "retrain with several seeds: each one's result, then their mean and spread.")
@click.option("--budget", type=float, default=1.0, show_default=True, help="Fraction of a full evaluation.")
@click.option("--split", type=click.Choice(["validation", "test"]), help="Data split, for evaluators that have one.")
@click.option("--primitives", "primitive_set", help="Primitive set (default: the evaluator's).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def evaluate(expression, evaluator, overrides, seeds, budget, split, primitive_set, as_json, quiet):
    """Evaluate one EXPRESSION and print its fitness and metrics.

    An evaluator that reports its progress (bnn-cifar: steps, epoch, loss, validation accuracy)
    shows a bar with an ETA on stderr meanwhile. Exits 1 when an evaluation failed (the results
    are still printed), so that scripts can tell."""
    from gpengine.errors import ConfigError
    from gpengine.eval_progress import progress_bar
    from gpengine.evaluator import option_names
    from gpengine.executor import guarded_evaluate
    from gpengine.expr_text import parse
    from gpengine.plugins import build_evaluator, load_evaluator_class
    from primitives import get_set

    cls = load_evaluator_class(evaluator)
    options = evaluator_options(overrides, option_names(cls.Options))
    if split is not None:
        if "split" not in option_names(cls.Options):
            raise ConfigError(f"evaluator {evaluator!r} has no data splits (--split)")
        options["split"] = split
    if not 0.0 < budget <= 1.0:
        raise ConfigError(f"--budget must be in (0, 1] (got {budget})")
    seeds = tuple(dict.fromkeys(seeds)) or (0,)  # a seed given twice is the same evaluation
    pset = get_set(primitive_set or cls.primitive_set)
    expr = parse(expression, pset)
    ev = build_evaluator(evaluator, cls, {**options, "primitives": pset.name})
    results = []
    for k, seed in enumerate(seeds):
        label = str(expr) if len(seeds) == 1 else f"{expr} (seed {seed}, {k + 1} of {len(seeds)})"
        with progress_bar(label, disable=quiet):
            results.append(guarded_evaluate(ev, expr, budget, seed))
    data = ev.dataset()  # which split was scored matters: a test-set figure must say so
    if as_json:
        click.echo(json.dumps(_as_json(expr, data, seeds, results), allow_nan=False))
    elif len(seeds) == 1:
        _print_one(expr, data, results[0])
    else:
        _print_replicates(expr, data, seeds, results)
    _exit_if_any_failed(results)


def evaluator_options(overrides: Sequence[str], allowed: list[str]) -> dict[str, Any]:
    """`gpengine evaluate`'s --set items as evaluator options: `evaluator.KEY` reads as KEY, as in
    `gpengine run`; a search key (population, ...) gets one line saying it belongs to a search."""
    from gpengine.config import SEARCH_KEYS, parse_assignment
    from gpengine.errors import ConfigError

    options: dict[str, Any] = {}
    for item in overrides:
        key, value = parse_assignment(item)
        forced = key.startswith("evaluator.")  # an evaluator option by name, as in gpengine run
        key = key.removeprefix("evaluator.")
        if not forced and key not in allowed and key.split(".")[0] in SEARCH_KEYS:
            raise ConfigError(f"{key!r} is a search key, for gpengine run; gpengine evaluate takes evaluator "
                              f"options only ({', '.join(allowed) or 'none'})")
        options[key] = value
    return options


def spread(results: Sequence[Any]) -> tuple[list[float], float, float]:
    """The measured fitnesses, their mean and sample standard deviation (NaN where too few)."""
    values = [r.fitness for r in results if r.ok]
    mean = statistics.fmean(values) if values else math.nan
    sd = statistics.stdev(values) if len(values) > 1 else math.nan
    return values, mean, sd


def _number(value: Any) -> Any:
    """Strict JSON: a NaN (a failed fitness, a diverged loss) is null, not the bare NaN json.dumps writes."""
    return value if not isinstance(value, float) or math.isfinite(value) else None


def _result_json(result: Any) -> dict[str, Any]:
    return {"fitness": _number(result.fitness), "status": result.status, "message": result.message,
            "metrics": {k: _number(v) for k, v in result.metrics.items()},
            "curves": {k: [_number(x) for x in v] for k, v in result.curves.items()},
            "cost": _number(result.cost)}


def _as_json(expr, data, seeds: Sequence[int], results: Sequence[Any]) -> dict[str, Any]:
    head = {"expr": str(expr), "data": data.name if data else None}
    if len(seeds) == 1:  # the single evaluation's fields at the top, as scripts read them
        return {**head, **_result_json(results[0])}
    values, mean, sd = spread(results)
    return {**head, "fitness_mean": _number(mean), "fitness_sd": _number(sd), "measured": len(values),
            "results": [{"seed": s, **_result_json(r)} for s, r in zip(seeds, results)]}


def _print_head(expr, data) -> None:
    click.echo(f"expr     {expr}")
    if data is not None:
        sizes = ", ".join(f"{n} {what}" for n, what in ((data.n_train, "training"), (data.n_validation, "scored"))
                          if n)
        click.echo(f"data     {data.name}" + (f" ({sizes})" if sizes else ""))


def _fitness(value: float) -> str:
    return f"{value:.6g}" if math.isfinite(value) else "nan"


def _print_one(expr, data, result) -> None:
    _print_head(expr, data)
    click.echo(f"status   {result.status}" + (f" ({result.message})" if result.message else ""))
    click.echo(f"fitness  {_fitness(result.fitness)}")
    for k, v in sorted(result.metrics.items()):
        click.echo(f"  {k:20s} {v:.6g}")
    click.echo(f"cost     {result.cost:.2f}s")


def _print_replicates(expr, data, seeds: Sequence[int], results: Sequence[Any]) -> None:
    _print_head(expr, data)
    width = max(len(str(s)) for s in seeds)
    for seed, r in zip(seeds, results):
        note = f"  ({r.message})" if r.message else ""
        click.echo(f"seed {seed:<{width}}  {r.status:8s} {_fitness(r.fitness):>10s}  {r.cost:8.2f}s{note}")
    values, mean, sd = spread(results)
    of = f"{len(values)} of {len(seeds)} seeds" if len(values) < len(seeds) else f"{len(seeds)} seeds"
    if len(values) > 1:
        click.echo(f"fitness  {mean:.6g} +- {sd:.3g} (mean +- sample sd over {of}; "
                   f"range {min(values):.6g} to {max(values):.6g})")
    else:
        click.echo(f"fitness  {_fitness(mean)} ({of} measured)")
    click.echo(f"cost     {sum(r.cost for r in results):.2f}s")


def _exit_if_any_failed(results: Sequence[Any]) -> None:
    from gpengine.evaluator import FAILED

    if any(r.status == FAILED for r in results):
        raise SystemExit(1)
