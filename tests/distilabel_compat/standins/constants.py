"""distilabel's `constants`: distilflow's, plus the name of an attribute of distilabel's Pipeline graph.

`tests/unit/steps/test_base.py` imports `ROUTING_BATCH_FUNCTION_ATTR_NAME` at module level for one
test that reads `pipeline.dag` (left out, exclusions.py); the name is here so the file's other
tests run.
"""

from distilflow.constants import *  # noqa: F403
from distilflow.constants import __all__ as _names

ROUTING_BATCH_FUNCTION_ATTR_NAME = "routing_batch_function"

__all__ = [*_names, "ROUTING_BATCH_FUNCTION_ATTR_NAME"]
