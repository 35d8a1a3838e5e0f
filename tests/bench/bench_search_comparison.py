"""Random search, GAAF's GA, tree GP and tree GP with successive halving, at equal training seconds.

    python tests/bench/bench_search_comparison.py [--seeds 0 1] [--max-cost SECONDS] [--population N]
        [--methods random gaaf tree tree-sh] [--set key=value ...] [--final key=value ...] [--final-seeds 100 101 102]
        [--no-final | --final-only EXPR [EXPR ...]] [--parallel N] [--trajectories FILE.json]
    python tests/bench/bench_search_comparison.py --pool FILE.json [FILE.json ...] [--plot FILE.png]
        [--retrain --set ... --final ...]

Each method runs a bnn-cifar search on the real CIFAR-10 (validation split)
per search seed, stopped when the evaluator has spent `--max-cost` seconds
of training (`max_cost`, the sum of `Result.cost`). The persistent cache is
off (`cache=false`), so no search is answered from another's work; dedup
within a search and the pre-screen stay on (they are part of the engine).

Printed per search: the best validation accuracy at full fidelity (records
at `budget=1`; low-rung results of successive halving are not comparable
and are not counted) over training seconds spent, the share of proposals
answered by the in-search memo or the pre-screen, and the evaluations per
rung. Then per method the mean best, and the compute tree GP + SH needed to
reach the GAAF GA's best (the issue's target: at most one third of it).
Last ("does it find something real"): the best activation of the best
method and the identity, each trained with `--final-seeds` under the
`--final` options (a higher fidelity): the gain and whether it exceeds twice
the seed spread.

`--pool ... --retrain` asks the target's question without the searches'
luck: per search seed it retrains, with `--final-seeds`, the GAAF GA's final
best and the activation tree GP + SH held after a third of the GA's compute
(searches saved by `--trajectories` keep what they held after each
improvement), and compares their means. A search's best score is one noisy
run (the quick profile's seed spread is 0.5-1.8 points for the top
activations), so which method scored higher says little about which found
the better activation.

`--pool ... --plot FILE.png` draws the same searches as a picture: per
search seed, each method's best full-fidelity accuracy over the training
seconds it had spent, with the GA's best and a third of its compute marked.

`--parallel N` runs N searches at once, each in its own process (joblib):
on a 2-core machine two single-threaded searches (`--set threads=1 jobs=1
cost_clock=cpu`) use both cores, and the CPU-second budget keeps them
comparable.

Full size (the issue's check; about two hours per method and seed on 2 cores):

    python tests/bench/bench_search_comparison.py --seeds 0 1 --max-cost 3600 --population 20 \
        --set profile=quick --final profile=quick epochs=16
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import attrs

from gpengine.config import parse_value

METHODS = {
    "random": ["strategy=random"],
    "gaaf": ["strategy=gaaf", "init=gaaf3"],
    "tree": [],
    "tree-sh": ["fidelity=sh", "eta=3"],
}




class Progress:
    def __init__(self, label: str):
        self.label = label

    def on_generation(self, event) -> None:
        s = event.stats
        print(f"    [{self.label}] gen {s.generation}: best {s.best:.2f} evals {s.evaluations} "
              f"cost {s.cost:.0f}s", flush=True)


def trajectory(individuals, top_budget: float) -> list[tuple[float, float]]:
    """(training seconds so far, best full-fidelity fitness so far) after every record."""
    spent, best, out = 0.0, -math.inf, []
    for ind in individuals:
        if not ind.cached:
            spent += ind.result.cost
        if ind.result.ok and math.isclose(ind.budget, top_budget) and ind.result.status == "ok":
            best = max(best, ind.fitness)
        out.append((spent, best))
    return out


def improvements(individuals, traj) -> list[tuple[float, float, str]]:
    """(training seconds so far, fitness, expression) each time the best full-fidelity fitness rose in
    `traj` (the records' `trajectory`): which activation a method held at any point, for retraining it
    later with fresh seeds."""
    out, before = [], -math.inf
    for ind, (spent, best) in zip(individuals, traj):
        if best > before:  # this record raised the best
            out.append((spent, best, str(ind.expr)))
        before = best
    return out


def cost_to_reach(traj, level: float) -> float:
    for spent, best in traj:
        if best >= level:
            return spent
    return math.inf


def run_search(method: str, seed: int, args) -> dict:
    from gpengine.config import build_config
    from gpengine.search import Search

    overrides = [f"population={args.population}", "generations=100000", f"max_cost={args.max_cost}",
                 "tracking=false", "journal=false", "cache=false", *METHODS[method], *args.set]
    cfg, opts = build_config(evaluator="bnn-cifar", overrides=overrides, seed=seed)
    if not any(item.startswith("max_time=") for item in args.set):
        # bnn-cifar's search defaults stop a search after an hour of wall time: a long or crowded one
        # would end before its max_cost, at unequal compute
        cfg = attrs.evolve(cfg, max_time=None)
    t = time.perf_counter()
    out = Search(cfg, opts, listeners=[Progress(f"{method} s{seed}")]).run()
    wall = time.perf_counter() - t
    records = out.individuals
    traj = trajectory(records, cfg.budget)
    full = [i for i in records if i.result.ok and i.result.status == "ok" and math.isclose(i.budget, cfg.budget)]
    best = max(full, key=lambda i: i.fitness) if full else None
    rungs: dict[float, int] = {}
    for i in records:
        if not i.cached and i.result.status != "rejected":
            rungs[round(i.budget, 4)] = rungs.get(round(i.budget, 4), 0) + 1
    n = len(records)
    memo = sum(1 for i in records if i.cached and i.result.status != "rejected")  # same candidate seen before
    rejected = sum(1 for i in records if i.result.status == "rejected")  # pre-screen (fresh or remembered)
    aborted = sum(1 for i in records if i.result.status == "aborted")
    return {"method": method, "seed": seed, "traj": traj, "improved": improvements(records, traj),
            "best": best, "wall": wall, "n": n, "memo": memo, "rejected": rejected, "aborted": aborted,
            "rungs": rungs, "spent": traj[-1][0] if traj else 0.0, "reason": out.reason}


def print_search(r: dict) -> None:
    b = r["best"]
    print(f"  {r['method']} seed {r['seed']}: best {b.fitness if b else float('nan'):.2f}% "
          f"`{b.expr if b else '-'}` after {r['spent']:.0f} training s ({r['wall']:.0f} s wall, "
          f"stop: {r['reason']}); {r['n']} proposals: {r['memo']} answered by the memo, "
          f"{r['rejected']} by the pre-screen, {r['aborted']} aborted early; evaluations per budget "
          f"{dict(sorted(r['rungs'].items()))}", flush=True)


def curve_row(r: dict) -> dict:
    """What `--trajectories` keeps of a search: enough to compare methods again, with other seeds."""
    return {"method": r["method"], "seed": r["seed"], "spent": r["spent"],
            "best": r["best"].fitness if r["best"] else None, "traj": r["traj"], "improved": r["improved"]}


def print_shares(rows: list[dict]) -> None:
    """Per search seed: the share of the GAAF GA's compute tree GP + SH needed to reach the GA's best."""
    shares = []
    for seed in sorted({r["seed"] for r in rows}):
        g = next((r for r in rows if r["method"] == "gaaf" and r["seed"] == seed), None)
        t = next((r for r in rows if r["method"] == "tree-sh" and r["seed"] == seed), None)
        if g is None or t is None or g["best"] is None:
            continue
        need = cost_to_reach(t["traj"], g["best"])
        shares.append(need / max(g["spent"], 1e-9))
        if math.isinf(need):
            own = "nothing" if t["best"] is None else f"{t['best']:.2f}%"
            print(f"seed {seed}: tree GP + SH never reaches the GAAF GA's best ({g['best']:.2f}%, the GA spent "
                  f"{g['spent']:.0f} s); its own best is {own}, in {t['spent']:.0f} s")
            continue
        print(f"seed {seed}: tree GP + SH reaches the GAAF GA's best ({g['best']:.2f}%) after "
              f"{need:.0f} training s = {shares[-1]:.2f} of the GAAF GA's {g['spent']:.0f} s (target <= 0.33)")
    if len(shares) > 1:
        met = sum(x <= 1 / 3 for x in shares)
        print(f"{len(shares)} seeds: target met on {met}; median share {statistics.median(shares):.2f}")


def load_rows(files: list[str]) -> list[dict]:
    """The searches saved by `--trajectories` in `files`, all in one list; each row's `source` is
    its file's name, which tells apart two variants of one method (SH with and without an option)."""
    rows = []
    for name in files:
        with open(name) as f:
            rows.extend(dict(row, source=Path(name).stem) for row in json.load(f))
    return rows


def curve_label(row: dict, rows: list[dict]) -> str:
    """A row's method, and its file where another row of the same seed has the same method."""
    twins = [r for r in rows if r["seed"] == row["seed"] and r["method"] == row["method"]]
    return row["method"] if len(twins) == 1 else f"{row['method']} ({row.get('source', '?')})"


def step_curve(row: dict) -> tuple[list[float], list[float]]:
    """The best full-fidelity fitness a search held against the training seconds it had spent, as
    the corners of a step plot, from its first full-fidelity result to the end of the search."""
    xs: list[float] = []
    ys: list[float] = []
    for spent, best in row["traj"]:
        if not math.isfinite(best):
            continue  # nothing at full fidelity yet
        if ys and best == ys[-1]:
            continue
        if ys:  # held the old best up to here
            xs.append(spent)
            ys.append(ys[-1])
        xs.append(spent)
        ys.append(best)
    if ys:
        xs.append(row["spent"])
        ys.append(ys[-1])
    return xs, ys


def plot_pool(rows: list[dict], path: str) -> Path:
    """One panel per search seed: each method's best validation accuracy over the training seconds
    it spent (the issue's "best over compute"), with the GAAF GA's best and a third of its compute
    marked, the target's two lines. The curves' labels end with the activation each held last."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    seeds = sorted({r["seed"] for r in rows})
    if not seeds:
        raise SystemExit("--plot: no searches in the pooled files")
    cols = min(len(seeds), 3)
    lines = -(-len(seeds) // cols)
    fig = Figure(figsize=(5.2 * cols, 3.9 * lines), dpi=100)
    FigureCanvasAgg(fig)
    colours = {"gaaf": "#d62728", "tree-sh": "#1f77b4", "tree": "#2ca02c", "random": "#7f7f7f"}
    styles = ["-", "--", ":", "-."]
    for k, seed in enumerate(seeds):
        ax = fig.add_subplot(lines, cols, k + 1)
        mine = [r for r in rows if r["seed"] == seed]
        ga = next((r for r in mine if r["method"] == "gaaf" and r.get("best") is not None), None)
        seen: dict[str, int] = {}
        for r in mine:
            xs, ys = step_curve(r)
            if not xs:
                continue
            n = seen[r["method"]] = seen.get(r["method"], -1) + 1
            last = r["improved"][-1][2] if r.get("improved") else ""
            ax.plot(xs, ys, color=colours.get(r["method"], "#9467bd"), ls=styles[n % len(styles)], lw=1.8,
                    label=f"{curve_label(r, rows)}: {ys[-1]:.2f} `{last}`")
        if ga is not None:
            ax.axhline(ga["best"], color=colours["gaaf"], lw=0.7, ls=":")
            ax.axvline(ga["spent"] / 3, color="#555", lw=0.9, ls=":")
            ax.text(ga["spent"] / 3, ax.get_ylim()[0], " a third of the GA's compute", fontsize=7,
                    rotation=90, va="bottom", ha="right", color="#555")
        ax.set_title(f"search seed {seed}", fontsize=10)
        ax.set_xlabel("training CPU-seconds spent", fontsize=8)
        ax.set_ylabel("best validation top-1, %", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(loc="lower right", fontsize=6.5)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, format="png")
    return out


def pool(files: list[str]) -> None:
    """Summaries of searches saved by `--trajectories`, possibly from several runs of this script."""
    rows = load_rows(files)
    for method in sorted({r["method"] for r in rows}):
        bests = [r["best"] for r in rows if r["method"] == method and r["best"] is not None]
        print(f"{method}: best per seed {', '.join(f'{b:.2f}' for b in bests)}; mean {statistics.fmean(bests):.2f}")
    print_shares(rows)


def retrain(exprs: list[str], args, identity: bool = True) -> dict[str, list[float]]:
    """Each of `exprs` (and first the identity, unless told not to) trained with `--final-seeds` under the
    `--final` options (on top of the evaluator options in `--set`): fresh seeds, so no search's lucky draw
    carries over."""
    from evaluators.bnn_cifar import BnnCifar
    from gpengine.expr_text import parse
    from primitives import get_set

    pset = get_set("gaaf")
    known = attrs.fields_dict(BnnCifar.Options)  # --set also carries search keys (jobs, ...): not the evaluator's
    pairs = (kv.split("=", 1) for kv in [*args.set, *args.final])
    options = {k.removeprefix("evaluator."): parse_value(v) for k, v in pairs if k.removeprefix("evaluator.") in known}
    options.setdefault("abort", "off")
    ev = BnnCifar(**options)
    print(f"\nretraining with seeds {args.final_seeds}, options {options}; settings {ev.settings}", flush=True)
    scores: dict[str, list[float]] = {}
    for text in dict.fromkeys(["x", *exprs] if identity else exprs):  # the identity once, first
        scores[text] = []
        for s in args.final_seeds:
            r = ev.evaluate(parse(text, pset), seed=s)
            scores[text].append(r.fitness)
            print(f"  {text} seed {s}: {r.status} {r.fitness:.2f}% in {r.cost:.0f} s", flush=True)
    return scores


def mean_sd(values: list[float]) -> str:
    return f"{statistics.fmean(values):.2f} +- {statistics.stdev(values) if len(values) > 1 else 0:.2f}"


def final_check(exprs: list[str], args) -> None:
    """Retrain each of `exprs` and the identity with fresh seeds; the gain over the identity, against noise."""
    scores = retrain(exprs, args)
    b = scores["x"]
    for text, a in scores.items():
        if text == "x":
            continue
        gain = statistics.fmean(a) - statistics.fmean(b)
        spread = statistics.fmean([statistics.stdev(a), statistics.stdev(b)]) if len(a) > 1 else float("nan")
        print(f"`{text}`: {mean_sd(a)}; identity: {mean_sd(b)}; gain {gain:+.2f} points; seed spread "
              f"{spread:.2f}; gain > 2 x spread: {gain > 2 * spread}")


def held_at(row: dict, spent: float) -> tuple[float, float, str] | None:
    """The improvement a saved search held after `spent` training seconds: (when, fitness, expression)."""
    held = [imp for imp in row.get("improved", []) if imp[0] <= spent]
    return tuple(held[-1]) if held else None


def retrain_pool(files: list[str], args) -> None:
    """The target without the searches' luck: per search seed, the GAAF GA's final best and the activation
    tree GP + SH held after a third of the GA's compute, both retrained with fresh seeds: compared on what
    they are, not on how lucky their one run in the search was."""
    rows = load_rows(files)
    pairs = []
    for seed in sorted({r["seed"] for r in rows}):
        g = next((r for r in rows if r["method"] == "gaaf" and r["seed"] == seed and r.get("improved")), None)
        t = next((r for r in rows if r["method"] == "tree-sh" and r["seed"] == seed and "improved" in r), None)
        if g is None or t is None:
            print(f"seed {seed}: skipped (needs a gaaf and a tree-sh search saved with their improvements)")
            continue
        pairs.append((seed, g["improved"][-1], held_at(t, g["spent"] / 3), g["spent"]))
    scores = retrain([expr for _, g, t, _ in pairs for expr in [g[2]] + ([t[2]] if t else [])], args,
                     identity=not args.no_identity)
    print("\n| search seed | GAAF GA's best (search score) | retrained | tree GP + SH after a third of the GA's "
          "compute (search score, when) | retrained | SH - GA |")
    print("|---|---|---|---|---|---|")
    wins = 0
    for seed, g, t, spent in pairs:
        ga = scores[g[2]]
        if t is None:
            print(f"| {seed} | `{g[2]}` ({g[1]:.2f}) | {mean_sd(ga)} | nothing at full fidelity yet | | - |")
            continue
        sh = scores[t[2]]
        diff = statistics.fmean(sh) - statistics.fmean(ga)
        wins += diff >= 0
        print(f"| {seed} | `{g[2]}` ({g[1]:.2f}) | {mean_sd(ga)} | `{t[2]}` ({t[1]:.2f}, {t[0] / spent:.2f}) | "
              f"{mean_sd(sh)} | {diff:+.2f} |")
    if "x" in scores:
        print(f"identity: {mean_sd(scores['x'])}")
    print(f"SH's activation after a third of the GA's compute at least as good as the GA's best on {wins} of "
          f"{len(pairs)} seeds")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--max-cost", type=float, default=3600.0, help="training seconds per search")
    ap.add_argument("--population", type=int, default=20)
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="search keys or bnn-cifar options")
    ap.add_argument("--final", nargs="*", default=["epochs=16"], metavar="KEY=VALUE")
    ap.add_argument("--final-seeds", nargs="+", type=int, default=[100, 101, 102])
    ap.add_argument("--no-final", action="store_true")
    ap.add_argument("--final-only", nargs="+", metavar="EXPR",
                    help="skip the searches: only the final check of each EXPR (against the identity)")
    ap.add_argument("--parallel", type=int, default=1, help="searches run at once, each in its own process")
    ap.add_argument("--trajectories", metavar="FILE.json",
                    help="also write each search's (training seconds, best full-fidelity accuracy) curve here, "
                         "and the activation it held after each improvement")
    ap.add_argument("--pool", nargs="+", metavar="FILE.json",
                    help="run nothing: summarise searches saved by earlier --trajectories runs, pooled")
    ap.add_argument("--retrain", action="store_true",
                    help="with --pool: retrain the GA's best and SH's at a third of the GA's compute (fresh seeds)")
    ap.add_argument("--plot", metavar="FILE.png",
                    help="with --pool: draw each seed's best over compute spent, per method, to this PNG")
    ap.add_argument("--no-identity", action="store_true",
                    help="with --retrain: do not retrain the identity beside them (known from an earlier run)")
    args = ap.parse_args()
    if args.pool:
        pool(args.pool)
        if args.plot:
            print(f"wrote {plot_pool(load_rows(args.pool), args.plot)}")
        if args.retrain:
            retrain_pool(args.pool, args)
        return
    if args.final_only:
        final_check(args.final_only, args)
        return
    print(f"methods {args.methods}, seeds {args.seeds}, {args.max_cost:.0f} training seconds each, "
          f"population {args.population}, --set {args.set}", flush=True)
    plan = [(method, seed) for seed in args.seeds for method in args.methods]
    if args.parallel > 1:  # each search in its own process, reported as it finishes
        from joblib import Parallel, delayed

        done = Parallel(n_jobs=args.parallel, return_as="generator_unordered")(
            delayed(run_search)(m, s, args) for m, s in plan)
    else:
        done = (run_search(method, seed, args) for method, seed in plan)
    runs = []
    for r in done:
        runs.append(r)
        print_search(r)
        if args.trajectories:  # rewritten after every search: a run stopped early keeps what it finished
            with open(args.trajectories, "w") as f:
                json.dump([curve_row(x) for x in runs], f)
    runs.sort(key=lambda x: plan.index((x["method"], x["seed"])))  # finishing order is not the plan's
    print("\n| method | best val. acc. per seed (full fidelity) | mean | at 1/3 of the compute | proposals "
          "| memo | pre-screen |")
    print("|---|---|---|---|---|---|---|")
    means = {}
    for method in args.methods:
        mine = [r for r in runs if r["method"] == method]
        bests = [r["best"].fitness if r["best"] else float("nan") for r in mine]
        third = [max([b for s, b in r["traj"] if s <= args.max_cost / 3] or [math.nan]) for r in mine]
        means[method] = statistics.fmean(bests)
        n = sum(r["n"] for r in mine)
        memo = sum(r["memo"] for r in mine)
        rej = sum(r["rejected"] for r in mine)
        print(f"| {method} | {', '.join(f'{b:.2f}' for b in bests)} | {means[method]:.2f} | "
              f"{', '.join(f'{b:.2f}' for b in third)} | {n} | {memo} ({100 * memo / n:.0f}%) | "
              f"{rej} ({100 * rej / n:.0f}%) |")
    print_shares([curve_row(r) for r in runs])
    if not args.no_final:
        best_method = max(means, key=lambda m: means[m])
        best = max((r["best"] for r in runs if r["method"] == best_method and r["best"]), key=lambda i: i.fitness)
        print(f"\nbest method by mean: {best_method}; its best activation `{best.expr}` ({best.fitness:.2f}%)")
        final_check([str(best.expr)], args)


if __name__ == "__main__":
    main()
