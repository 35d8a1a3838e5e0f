"""Progress bar for long searches: evaluations done, ETA, and the best so far."""

from __future__ import annotations

import math
import os
import shutil
import sys
import time

from tqdm import tqdm

from gpengine.evaluator import REJECTED
from gpengine.events import GenerationEnded, IndividualEvaluated, ResultArrived, SearchEnded, SearchStarted
from gpengine.fidelity import PROMOTE
from gpengine.noise import REEVAL
from gpengine.search import generation_batches


#: operators of records the bar's total does not plan for
UNPLANNED = (PROMOTE, REEVAL)


class ProgressBar:
    """A tqdm bar over proposals; the postfix shows generation, best fitness and cache hits.

    A training counts the moment it finishes (`ResultArrived`), so the bar and its ETA move
    within a batch; cache hits and pre-screen rejections count when their batch ends.
    `max_time`: the search stops on the clock after that many seconds, whatever the bar's
    ETA says, so the postfix names the time it will stop by. `max_evaluations` and `max_cost`
    stop it after that many trainings or evaluator seconds, which the bar's count of proposals
    (cache hits and rejections included) cannot show, so the postfix counts them against it.
    """

    def __init__(self, total: int | None, stream=None, disable: bool = False, max_time: float | None = None,
                 max_evaluations: int | None = None, max_cost: float | None = None):
        self.total = total
        self.stream = stream or sys.stderr
        self.disable = disable
        self.max_time = max_time
        self.max_evaluations = max_evaluations
        self.max_cost = max_cost
        self.evaluations = 0  # trainings run: neither a cache hit nor a pre-screen rejection
        self.cost = 0.0  # their evaluator seconds
        self.bar: tqdm | None = None
        self.best = -math.inf
        self.best_expr = ""
        self.generation = 0
        self.cached = 0
        self.stop_by = ""
        self.counted: set[int] = set()  # ids shown on arrival, not to be counted again

    def on_search_start(self, event: SearchStarted) -> None:
        self.bar = tqdm(total=self.total, unit="ind", file=self.stream, disable=self.disable,
                        desc=event.evaluator, smoothing=0.1, **terminal_size_options(self.stream))
        if self.max_time is not None:
            self.stop_by = stop_time(self.max_time)

    def on_result_arrived(self, event: ResultArrived) -> None:
        self.counted.add(event.individual.id)
        self._count(event.individual)

    def on_individual(self, event: IndividualEvaluated) -> None:
        ind = event.individual
        self.cached += ind.cached
        if not ind.cached and ind.status != REJECTED:  # what the search's budgets count
            self.evaluations += 1
            self.cost += ind.result.cost
        if ind.id in self.counted:
            self.counted.discard(ind.id)
            return
        if ind.generation == 0 and ind.status == REJECTED and self.bar is not None and self.bar.total:
            # The first population is drawn until enough candidates pass the pre-screen; the
            # rejects are recorded on top of it, so each one is a proposal the total did not expect.
            self.bar.total += 1
        self._count(ind, replayed=event.replayed)

    def _count(self, ind, replayed: bool = False) -> None:
        if ind.fitness > self.best:
            self.best, self.best_expr = ind.fitness, str(ind.expr)
        if self.bar is None:
            return
        if ind.operator in UNPLANNED and self.bar.total:
            self.bar.total += 1  # a promotion or a replicate: work on top of the proposals the total counts
        self.bar.set_postfix_str(self._postfix(), refresh=False)  # postfix first: update() draws the line
        if replayed and not self.bar.disable:  # a disabled tqdm has no counters to set
            # A resume replays its journal in milliseconds: counted as done before this run started,
            # not as throughput, or the rate would read hundreds a second and the ETA zero.
            self.bar.n += 1
            self.bar.initial += 1
            self.bar.last_print_n = self.bar.n
            self.bar.refresh()
        else:
            self.bar.update(1)

    def on_generation(self, event: GenerationEnded) -> None:
        self.generation = event.stats.generation
        if self.bar is not None:
            self.bar.set_postfix_str(self._postfix())

    def on_search_end(self, event: SearchEnded) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def _postfix(self) -> str:
        expr = self.best_expr if len(self.best_expr) <= 40 else self.best_expr[:37] + "..."
        # The expression last: a narrow terminal cuts the line from the right.
        budgets = ""
        if self.max_evaluations is not None:
            budgets += f", evals {self.evaluations}/{self.max_evaluations}"
        if self.max_cost is not None:
            spent = f"{self.cost:.0f}" if self.max_cost >= 10 else f"{self.cost:.3g}"  # a training: seconds
            budgets += f", cost {spent}/{self.max_cost:g}s"
        stop = f", stops by {self.stop_by}" if self.stop_by else ""
        return f"best {self.best:.6g}, gen {self.generation}, cached {self.cached}{budgets}{stop} [{expr}]"


def stop_time(max_time: float) -> str:
    """The clock time (HH:MM) `max_time` seconds from now; "" where the clock cannot show it.

    A limit of centuries (max_time=1e17 is a valid config) lies past what the platform's time_t
    or localtime can represent (OverflowError, OSError); the bar then names no stop time rather
    than the search dying before its first evaluation."""
    try:
        return time.strftime("%H:%M", time.localtime(time.time() + max_time))
    except (OverflowError, OSError, ValueError):  # ValueError: nan, from a caller that did not validate
        return ""


def terminal_size_options(stream) -> dict:
    """Follow the terminal's size, unless it reports none.

    A pseudo-terminal nobody sized (`script`, some CI runners and container shells) reports
    0 x 0, and tqdm then takes the bar for a line below the screen's last row and draws nothing:
    an hour-long search would show nothing. There the size comes from $COLUMNS / $LINES, else 100 x 24.
    """
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):  # not a terminal (a file, a pipe, StringIO)
        return {}
    if columns > 0:
        return {"dynamic_ncols": True}
    size = shutil.get_terminal_size((100, 24))
    return {"ncols": size.columns, "nrows": size.lines}


def expected_proposals(config) -> int:
    """Total for the bar: the first population plus the children of every later generation,
    made as `gpengine.search.generation_batches` says.

    Not counted: first-population rejects, promotions of successive halving and elite
    re-evaluations (the bar adds them to its total as they come). Other budgets (evaluations, time, cost) may
    stop a search earlier; the bar then simply closes before it is full.
    """
    batches, per_batch = generation_batches(config)
    return config.population + config.generations * max(1, batches * per_batch)
