"""gpengine: genetic programming over expression trees with pluggable evaluators.

The core (this package) never imports torch: evaluators own their frameworks.
"""

from gpengine.errors import ConfigError, DataError, GpengineError, ParseError, PluginError
from gpengine.evaluator import DatasetInfo, Evaluator, Result
from gpengine.expr import Expr, Node
from gpengine.expr_text import parse

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DataError",
    "DatasetInfo",
    "Evaluator",
    "Expr",
    "GpengineError",
    "Node",
    "ParseError",
    "PluginError",
    "Result",
    "parse",
    "__version__",
]
