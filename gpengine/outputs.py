"""The listeners a search's output keys ask for: `tracking` subscribes the MLflow tracker.

`Search` adds it when it is built, as it adds the journal for `journal`, so a
search writes the same records whether `gpengine run` or Python code starts it
(README, Library). The loop itself still only fires events; this module only
chooses a subscriber, and imports MLflow only when tracking is on.
"""

from __future__ import annotations

from typing import Any, Sequence


def tracker_for(config: Any, evaluator_cls: Any, listeners: Sequence[Any] = ()) -> Any | None:
    """An MlflowTracker configured by `config` (tracking_uri, child_runs), or None: tracking is off,
    a tracker is already among `listeners` (the caller's own, e.g. on another URI), or MLflow is
    not installed."""
    if not config.tracking:
        return None
    try:
        from gpengine.tracking import MlflowTracker
    except ImportError:
        return None
    if any(isinstance(listener, MlflowTracker) for listener in listeners):
        return None
    plot = None
    if getattr(evaluator_cls, "activation_plots", False):
        from gpengine.tracking.plots import activation_plotter
        from primitives import get_set

        plot = activation_plotter(get_set(config.primitives or evaluator_cls.primitive_set))
    return MlflowTracker(tracking_uri=config.tracking_uri, child_runs=config.child_runs, evaluator_plot=plot)
