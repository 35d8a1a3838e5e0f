"""Progress of one long evaluation, for whoever waits on it (`gpengine evaluate`).

An evaluator calls `report_progress(done, total, **info)` as it works (bnn-cifar: every few
training steps, with the epoch, the loss and the last validation accuracy). Someone listens only
where one evaluation is all there is to watch: `gpengine evaluate` shows a bar with an ETA
(`progress_bar`). In a search nobody listens, since the search's own bar counts the evaluations,
so there a report costs one context-variable lookup, in a worker process or in the main one.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Any, Callable, Iterator

Listener = Callable[[float, float, str, dict[str, Any]], None]

_listener: contextvars.ContextVar[Listener | None] = contextvars.ContextVar("gpengine_eval_progress", default=None)


def report_progress(done: float, total: float, *, unit: str = "step", **info: Any) -> None:
    """`done` of `total` units of this evaluation's work; `info`: what to show beside it (epoch, loss)."""
    listener = _listener.get()
    if listener is not None:
        listener(done, total, unit, info)


@contextlib.contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Route the reports made inside the block to `listener(done, total, unit, info)`."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)


def _shown(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class _Bar:
    """A tqdm bar drawn at the first report (an evaluator that reports nothing draws nothing)."""

    def __init__(self, desc: str, stream, disable: bool, min_interval: float) -> None:
        self.desc, self.stream, self.disable, self.min_interval = desc, stream, disable, min_interval
        self.bar = None

    def __call__(self, done: float, total: float, unit: str, info: dict[str, Any]) -> None:
        from tqdm import tqdm

        from gpengine.progress import terminal_size_options

        postfix = ", ".join(f"{k} {_shown(v)}" for k, v in info.items())
        if self.bar is None:
            self.bar = tqdm(total=total, desc=self.desc, unit=unit, file=self.stream, disable=self.disable,
                            smoothing=0.1, mininterval=self.min_interval, **terminal_size_options(self.stream))
        elif done < self.bar.n:  # a new run (bnn-cifar measures its abort floor first): start over
            self.bar.set_postfix_str(postfix, refresh=False)
            self.bar.reset(total=total)
        elif total != self.bar.total:
            self.bar.total = total
        self.bar.set_postfix_str(postfix, refresh=False)
        self.bar.update(done - self.bar.n)  # also redraws the postfix

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@contextlib.contextmanager
def progress_bar(desc: str, stream=None, disable: bool = False, min_interval: float = 0.1) -> Iterator[None]:
    """Show the reports made inside the block as a progress bar on `stream` (stderr), redrawn at most
    every `min_interval` seconds."""
    import sys

    bar = _Bar(desc, stream or sys.stderr, disable, min_interval)
    try:
        with listening(bar):
            yield
    finally:
        bar.close()
