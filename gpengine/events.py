"""Events fired by the search loop; tracking, journal and progress subscribe.

The loop knows nothing of MLflow or files: it calls `EventBus.emit(event)`,
and each listener implements whichever of `on_search_start`,
`on_individual`, `on_generation`, `on_search_end` it cares about. Only the
main process emits, so listeners may write without locking.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol

import attrs

from gpengine.evaluator import DatasetInfo
from gpengine.individual import Individual


@attrs.frozen
class SearchStarted:
    search_id: str  # stable id of this search (also the run name)
    evaluator: str  # entry-point name
    evaluator_version: str
    engine_version: str
    config: Mapping[str, Any]  # flattened configuration, evaluator options included
    seed: int
    dataset: DatasetInfo | None = None
    resumed: bool = False
    evaluator_settings: Mapping[str, Any] = attrs.field(factory=dict)  # Evaluator.resolved_settings()


@attrs.frozen
class IndividualEvaluated:
    individual: Individual
    batch_end: bool = True  # last result of a batch that arrived together: a good moment to flush
    replayed: bool = False  # re-emitted on resume from the journal (listeners skip what they have)


@attrs.frozen
class ResultArrived:
    """One training of a batch still running has finished: for live displays only.

    The full record (lineage, cache flag) follows as `IndividualEvaluated` when the batch ends,
    in id order, and the journal and tracking wait for that. Without this a progress bar sat at 0%
    through a whole first population of trainings (10-15 minutes for bnn-cifar on 2 cores).
    """

    individual: Individual  # its result set; `cached` not yet known


@attrs.frozen
class GenerationStats:
    generation: int
    best: float  # best fitness so far in the population
    mean: float
    median: float
    diversity: float  # distinct fingerprints / population size
    evaluations: int  # evaluations spent so far (cache hits excluded)
    failures: int  # failed or rejected so far
    cost: float  # evaluator seconds so far
    best_id: int = -1


@attrs.frozen
class GenerationEnded:
    stats: GenerationStats


@attrs.frozen
class SearchEnded:
    best: Individual | None
    hall_of_fame: tuple[Individual, ...]
    reason: str  # "generations", "evaluations", "time", "target", "stopped", "failed"
    elapsed: float


Event = SearchStarted | ResultArrived | IndividualEvaluated | GenerationEnded | SearchEnded

_HANDLERS = {
    SearchStarted: "on_search_start",
    ResultArrived: "on_result_arrived",
    IndividualEvaluated: "on_individual",
    GenerationEnded: "on_generation",
    SearchEnded: "on_search_end",
}


class Listener(Protocol):
    def on_search_start(self, event: SearchStarted) -> None: ...
    def on_individual(self, event: IndividualEvaluated) -> None: ...
    def on_generation(self, event: GenerationEnded) -> None: ...
    def on_search_end(self, event: SearchEnded) -> None: ...


class EventBus:
    def __init__(self, listeners: list[Any] | None = None):
        self.listeners: list[Any] = list(listeners or [])

    def subscribe(self, listener: Any) -> None:
        self.listeners.append(listener)

    def emit(self, event: Event) -> None:
        name = _HANDLERS[type(event)]
        for listener in self.listeners:
            handler = getattr(listener, name, None)
            if handler is not None:
                handler(event)
