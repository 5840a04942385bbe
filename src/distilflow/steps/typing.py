"""distilabel's path for the step type aliases (`distilabel.steps.typing`); their home is `distilflow.typing`."""

from distilflow.typing import GeneratorStepOutput, StepColumns, StepOutput

__all__ = ["GeneratorStepOutput", "StepColumns", "StepOutput"]
