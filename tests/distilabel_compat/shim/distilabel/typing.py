from distilflow.tasks.typing import *  # noqa: F403
from distilflow.tasks.typing import __all__  # noqa: F401
