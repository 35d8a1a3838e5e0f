"""`faults`: symbolic regression that misbehaves on purpose, to test failure isolation.

Any candidate using the primitive named by `trigger` (default `cos`; `*`: every candidate) suffers
the chosen `fault`: `raise` an exception, return `nan`, `hang` (sleep for an
hour), `exit` (os._exit of the worker) or `kill` (SIGKILL of the worker).
`delay` adds a sleep to every evaluation, to make a search slow enough to be
interrupted in tests; `build_delay` one to building the evaluator (a slow start-up, as a
plugin loading its data); `log` names a file that gets one line per evaluation. Everything else behaves like `symreg`.
"""

from __future__ import annotations

import math
import os
import signal
import time

import attrs

from gpengine.errors import ConfigError
from gpengine.evaluator import Result
from gpengine.expr import Expr
from evaluators.symreg import SymbolicRegression

FAULTS = ("none", "raise", "nan", "hang", "exit", "kill")


def _fault(inst, attribute, value):
    if value not in FAULTS:
        raise ConfigError(f"fault must be one of {', '.join(FAULTS)} (got {value!r})")


def _seconds(inst, attribute, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigError(f"{attribute.name} must be a number of seconds >= 0 (got {value!r})")


class FaultInjection(SymbolicRegression):
    description = "symreg with injected faults (raise, nan, hang, exit, kill) for testing failure isolation"
    version = "1"

    @attrs.define(kw_only=True)
    class Options(SymbolicRegression.Options):
        fault: str = attrs.field(default="none", validator=_fault)
        trigger: str = "cos"
        delay: float = attrs.field(default=0.0, validator=_seconds)
        build_delay: float = attrs.field(default=0.0, validator=_seconds)
        log: str | None = None  # append "expr seed" per evaluation: lets tests count evaluations

    def __init__(self, **options):
        super().__init__(**options)
        if self.options.build_delay > 0:
            time.sleep(self.options.build_delay)

    def evaluate(self, expr: Expr, *, budget: float = 1.0, seed: int = 0) -> Result:
        o = self.options
        if o.log:
            with open(o.log, "a") as fh:
                fh.write(f"{expr}\t{seed}\t{budget!r}\n")
        if o.delay > 0:
            time.sleep(o.delay)
        if o.fault != "none" and (o.trigger == "*" or o.trigger in expr.op_names()):
            if o.fault == "raise":
                raise RuntimeError(f"injected failure on {expr}")
            if o.fault == "nan":
                return Result(math.nan)
            if o.fault == "hang":
                time.sleep(3600)
            if o.fault == "exit":
                os._exit(3)
            if o.fault == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
        return super().evaluate(expr, budget=budget, seed=seed)
