from distilflow.tasks.typing import *  # noqa: F403
from distilflow.tasks.typing import __all__  # noqa: F401
from distilflow.tasks.steps.base import GeneratorStepOutput, StepOutput  # noqa: F401
