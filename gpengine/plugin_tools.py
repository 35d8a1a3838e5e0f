"""`gpengine new-evaluator` and `gpengine check-evaluator`: the plugin author's two commands.

Thin click layers: the scaffold lives in `gpengine.scaffold`, the checks in
`gpengine.contract` (which plugin authors also import in their own tests).
check-evaluator prints one PASS/FAIL line for every check (after a failure too) and exits 0 only when
every check passed (1 otherwise), so CI can run it over each installed plugin.
"""

from __future__ import annotations

import sys

import click


@click.command("new-evaluator")
@click.argument("name")
@click.argument("directory", required=False, type=click.Path(file_okay=False))
def new_evaluator(name, directory):
    """Scaffold an installable evaluator plugin NAME in DIRECTORY (default ./gpengine-NAME)."""
    from gpengine.scaffold import names_for, scaffold

    written = scaffold(name, directory)
    root = written[0].parent
    n = names_for(name)
    for path in written:
        click.echo(f"  wrote {path}")
    click.echo(f"\nnext:\n  pip install -e {root}\n  gpengine check-evaluator {name}\n"
               f"  gpengine run --evaluator {name} --set population=20 --set generations=5\n"
               f"edit {root / n['package'] / 'evaluator.py'}; the guide is docs/plugins.md in gpengine")


@click.command("check-evaluator")
@click.argument("name")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Evaluator option (repeatable).")
@click.option("--expr", "expr", help="Expression to evaluate (default: a small one from the primitive set).")
@click.option("--failing-expr", "failing", help="Expression the evaluator must fail on (default: one that overflows).")
@click.option("--primitives", "primitive_set", help="Primitive set (default: the evaluator's).")
def check_evaluator(name, overrides, expr, failing, primitive_set):
    """Run the evaluator contract checks against the installed plugin NAME."""
    from gpengine.config import parse_assignment
    from gpengine.contract import all_passed, run_checks

    # `evaluator.KEY` reads as KEY, as in gpengine run and evaluate
    options = {key.removeprefix("evaluator."): value for key, value in map(parse_assignment, overrides)}
    checks = run_checks(name, options, expr=expr, failing=failing, primitives=primitive_set,
                        echo=lambda c: click.echo(c.line()))
    passed = all_passed(checks)
    click.echo(f"{name}: {'all checks passed' if passed else 'contract broken'} "
               f"({sum(c.passed for c in checks)}/{len(checks)})")
    sys.exit(0 if passed else 1)
