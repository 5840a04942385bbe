"""Steps: the nodes of a pipeline that are not model calls (and the base every task shares)."""

from distilflow.tasks.steps.base import (
    GeneratorStep, GeneratorStepOutput, GlobalStep, Step, StepInput, StepOutput, StepResources,
)

__all__ = ["GeneratorStep", "GeneratorStepOutput", "GlobalStep", "Step", "StepInput", "StepOutput", "StepResources"]
