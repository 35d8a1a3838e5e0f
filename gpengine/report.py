"""`gpengine report`: one self-contained HTML page that says what a search found and how to get it again.

The page is read offline, mailed, or opened inside MLflow's artifact viewer,
so everything is inline: CSS, PNG plots as base64 data URIs, the genealogy as
inline SVG, no script or font from anywhere. It holds:

* the best individuals (distinct expressions), each with its formula (text
  and LaTeX), fitness mean and spread over replicates (the same expression
  evaluated more than once, e.g. re-evaluations) and the compute it cost;
* activation and derivative plots of the best few;
* fitness over generations and over compute (cumulative evaluator seconds),
  and diversity per generation: the statistics the search logged
  (`gpengine.generation_stats`: the population at each generation's end);
* the genealogy of the best (`tracking.genealogy.ancestry_svg`);
* the exact command and configuration that reproduce the search.

The rest is computed from the lineage rows, so a search read from
``runs/<id>/`` and one read from MLflow alone give the same page. When the
search has an MLflow run, the report is also logged to it as an artifact.
"""

from __future__ import annotations

import base64
import json
import math
import statistics
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import attrs
import click

from gpengine.tracking.lineage import is_ok, standing

TOP = 10  # rows in the best-individuals table
PLOTTED = 3  # activation plots
REPORT_NAME = "report.html"


# ------------------------------------------------------------------- statistics
def _key(r: dict[str, Any]) -> tuple[str, float]:
    return (r.get("expr_hash") or r["expr"], float(r.get("budget") or 1.0))


def replicate_stats(rows: list[dict[str, Any]]) -> dict[tuple[str, float], dict[str, float]]:
    """Per expression and budget: mean, sample std (NaN for one seed), n seeds, total cost.

    A re-evaluation record ("reeval", see gpengine.noise) carries the running
    mean as its fitness and its own seed's value as the metric `seed_fitness`;
    the spread is computed from the single-seed values, never from means.
    A record answered from the cache repeats a measurement already made with the
    same seed: it is counted once, and its cost (the original training's) is not
    spent again (see `spent`).
    """
    groups: dict[tuple[str, float], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[_key(r)].append(r)
    out = {}
    for key, members in groups.items():
        fits = []
        seeds: set[int] = set()
        for r in members:
            if not is_ok(r):
                continue
            if r.get("seed") is not None:
                if r["seed"] in seeds:
                    continue  # the same seed again (a cached copy): the same measurement
                seeds.add(r["seed"])
            # a row read from the lineage CSV alone (no child run) has the column, not the metrics
            value = ((r.get("metrics") or {}).get("seed_fitness", r.get("seed_fitness"))
                     if r.get("operator") == "reeval" else r["fitness"])
            if value is not None and math.isfinite(value):
                fits.append(float(value))
        out[key] = {
            "mean": statistics.fmean(fits) if fits else math.nan,
            "std": statistics.stdev(fits) if len(fits) > 1 else math.nan,
            "n": float(len(fits)),
            "cost": sum(spent(r) for r in members),
        }
    return out


def spent(r: dict[str, Any]) -> float:
    """Evaluator seconds this record cost the search: none when it was answered from the cache
    (its `cost` is the original training's), as the search's own `cost` statistic counts."""
    return 0.0 if r.get("cached") else float(r.get("cost") or 0.0)


def best_rows(rows: list[dict[str, Any]], n: int = TOP) -> list[dict[str, Any]]:
    """The n best candidates, each by its most informed record (`lineage.standing`)."""
    return standing(rows)[:n]


def compute_curve(rows: list[dict[str, Any]]) -> tuple[list[float], list[float]]:
    """Best fitness so far against cumulative evaluator seconds, in evaluation (id) order."""
    xs, ys = [], []
    cost, best = 0.0, -math.inf
    for r in sorted(rows, key=lambda r: r["id"]):
        cost += spent(r)
        if is_ok(r):
            best = max(best, r["fitness"])
        if math.isfinite(best):
            xs.append(cost)
            ys.append(best)
    return xs, ys


# ------------------------------------------------------------- reproduction
def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if not (isinstance(value, float) and not math.isfinite(value)) else str(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items() if v is not None) + " }"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(str(value))


def _set_value(value: Any) -> str:
    """The --set text that reads back as `value` (gpengine.config.parse_value)."""
    from gpengine.config import parse_value

    if isinstance(value, str) and parse_value(value) == value and value.strip() == value and value:
        return value
    return _toml(value)


def _defaults_in_force(evaluator: str) -> dict[str, Any]:
    """What `gpengine run --evaluator NAME` alone configures: SearchConfig's defaults under the
    evaluator's `search_defaults` (bnn-cifar: jobs 2, steady state...). A key equal to these may be
    left out of the command; one equal only to SearchConfig's may not. Values as search.json stores
    them (tuples read back as lists), so that equal values compare equal. An evaluator that does not
    load here gives {}: every key is then written out, never one wrongly left out."""
    from gpengine.config import build_config
    from gpengine.errors import GpengineError

    try:
        cfg, _ = build_config(evaluator=evaluator)
    except GpengineError:
        return {}
    return json.loads(json.dumps(attrs.asdict(cfg), default=str))


def reproduce(config: dict[str, Any], options: dict[str, Any]) -> tuple[str, str]:
    """(shell command, TOML config file) that rebuild exactly this search's configuration."""
    import shlex

    from gpengine.config import SEARCH_KEYS

    name = str(config["evaluator"])
    defaults = _defaults_in_force(name)
    args = ["gpengine", "run", "--evaluator", name, "--seed", str(config.get("seed", 0))]
    for key in SEARCH_KEYS:
        if key in ("evaluator", "seed") or key not in config:
            continue
        value = json.loads(json.dumps(config[key], default=str))  # as search.json and the defaults hold it
        if value == defaults.get(key):
            continue
        if isinstance(value, dict):
            for k, v in value.items():
                if (defaults.get(key) or {}).get(k) != v:
                    args += ["--set", f"{key}.{k}={_set_value(v)}"]
        elif value is not None:
            args += ["--set", f"{key}={_set_value(value)}"]
    for key, value in sorted(options.items()):
        if value is not None:
            prefix = "evaluator." if key in SEARCH_KEYS else ""
            args += ["--set", f"{prefix}{key}={_set_value(value)}"]
    command = " ".join(shlex.quote(a) for a in args)
    lines = [f"{k} = {_toml(v)}" for k, v in config.items() if k != "evaluator" and v is not None]
    lines += ["", "[evaluator]", f"name = {_toml(name)}"]
    lines += [f"{k} = {_toml(v)}" for k, v in sorted(options.items()) if v is not None]
    return command, "\n".join(lines) + "\n"


# ------------------------------------------------------------------- pictures
def _png_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _line_plot(path: Path, xs: list[float], series: dict[str, list[float]], xlabel: str, ylabel: str,
               title: str, step: bool = False, integer_x: bool = False) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 3.4), dpi=100)
    FigureCanvasAgg(fig)
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.15, top=0.9)
    ax = fig.add_subplot(1, 1, 1)
    for label, ys in series.items():
        if step:
            ax.step(xs, ys, where="post", label=label)
        else:
            ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, ms=3, label=label)
    if integer_x:  # generations: no 0.25, 0.5, ... ticks between them
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    if xs and len(series) > 1:
        ax.legend(loc="best", fontsize=8)
    fig.savefig(path, format="png", bbox_inches="tight")  # margins fitted to long tick labels (26.25)
    return path


def pictures(saved: Any, best: list[dict[str, Any]], gens: list[dict[str, float]], folder: Path) -> dict[str, Any]:
    """Data URIs of every plot; a plot that cannot be drawn is left out, never an error."""
    from gpengine.expr_text import parse
    from gpengine.tracking.plots import plot_activation, plot_fitness
    from primitives import get_set

    out: dict[str, Any] = {"activations": {}}
    pset = get_set(saved.primitives)
    for r in best[:PLOTTED]:
        try:
            path = plot_activation(parse(r["expr"], pset), pset, folder / f"act{r['id']}.png", title=f"#{r['id']}")
            out["activations"][r["id"]] = _png_uri(path)
        except Exception:  # noqa: BLE001 - an odd expression only loses its picture
            pass
    if gens:
        out["fitness"] = _png_uri(plot_fitness(gens, folder / "fitness.png", title="fitness per generation"))
        gx = [g["generation"] for g in gens]
        out["diversity"] = _png_uri(_line_plot(folder / "div.png", gx, {"diversity": [g["diversity"] for g in gens]},
                                               "generation", "distinct fingerprints / individuals", "diversity",
                                               integer_x=True))
    xs, ys = compute_curve(saved.rows)
    if xs:
        out["compute"] = _png_uri(_line_plot(folder / "compute.png", xs, {"best so far": ys},
                                             "evaluator seconds (cumulative)", "best fitness",
                                             "fitness over compute", step=True))
    return out


# ---------------------------------------------------------------------- build
def build_report(saved: Any, path: str | Path) -> Path:
    """Write the report of `saved` (a `saved_search.SavedSearch`) to `path`."""
    from gpengine.paths import write_output
    from gpengine.report_page import render
    from gpengine.tracking.genealogy import Genealogy, ancestry_svg

    best = best_rows(saved.rows)
    gens = saved.history  # the search's own numbers, as logged to MLflow (gpengine.generation_stats)
    command, toml = reproduce(saved.config, saved.evaluator_options)
    with tempfile.TemporaryDirectory(prefix="gpengine-report-") as tmp:
        pics = pictures(saved, best, gens, Path(tmp))
    g = Genealogy(saved.rows)
    svg = ancestry_svg(g, best[0]["id"]) if best else ""
    text = render(saved=saved, best=best, stats=replicate_stats(saved.rows), gens=gens, pictures=pics,
                  genealogy_svg=svg, command=command, toml=toml)
    return write_output(path, text)


def log_to_mlflow(saved: Any, path: Path) -> bool:
    """Attach the report to the search's MLflow run; False when there is no run."""
    if saved.run is None or saved.client is None:
        return False
    with tempfile.TemporaryDirectory(prefix="gpengine-report-") as tmp:
        copy = Path(tmp) / REPORT_NAME  # the artifact keeps a fixed name, whatever --out was
        copy.write_bytes(Path(path).read_bytes())
        saved.client.log_artifact(saved.run.info.run_id, str(copy))
    return True


@click.command("report")
@click.argument("search")
@click.option("--out", "out", type=click.Path(dir_okay=False), help="Output file (default: report-<search>.html).")
@click.option("--runs-dir", default="runs", show_default=True, help="Folder holding runs/<search>/.")
@click.option("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite under runs/).")
@click.option("--no-mlflow", is_flag=True, help="Do not log the report to the search's MLflow run.")
def report(search, out, runs_dir, tracking_uri, no_mlflow):
    """Write a self-contained HTML report of SEARCH (also logged to its MLflow run)."""
    from gpengine import saved_search

    saved = saved_search.load(search, runs_dir=runs_dir, tracking_uri=tracking_uri, want_run=not no_mlflow)
    path = build_report(saved, out or f"report-{saved.search_id}.html")
    click.echo(f"wrote {path} ({len(saved.rows)} individuals)")
    if not no_mlflow and log_to_mlflow(saved, path):
        click.echo(f"logged as artifact {REPORT_NAME} of MLflow run {saved.run.info.run_id}")
