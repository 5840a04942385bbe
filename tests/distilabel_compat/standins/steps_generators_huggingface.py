"""distilabel's `steps.generators.huggingface`: distilflow's loaders, and a `LoadDataFromHub` that is not there yet.

distilflow has no `LoadDataFromHub` yet (the datasets issue adds it, with a local Hub double); its
tests are left out (exclusions.py) and the name is here only because the test module imports it.
"""

from distilflow.steps.generators.huggingface import *  # noqa: F403
from distilflow.steps.generators.huggingface import __all__ as _loaders


class LoadDataFromHub:
    def __init__(self, *args, **kwargs):
        raise NotImplementedError("distilflow has no LoadDataFromHub yet")


__all__ = [*_loaders, "LoadDataFromHub"]
