"""Tracking: lineage and fitness of searches in MLflow, and reading them back.

Wire it by subscribing a listener to the search's event bus::

    from gpengine.tracking import MlflowTracker
    bus.subscribe(MlflowTracker(tracking_uri=None, child_runs="auto"))

The default store is ``runs/mlflow.db`` (see `store`); `readback` reads a
search back from MLflow alone; `genealogy` and `lineage` draw and tabulate it.
"""

from gpengine.tracking.mlflow_tracker import MlflowTracker, estimate_individuals, run_name
from gpengine.tracking.store import resolve_uri

__all__ = ["MlflowTracker", "estimate_individuals", "resolve_uri", "run_name"]
