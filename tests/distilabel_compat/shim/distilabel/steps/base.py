from distilflow.tasks.steps.base import GeneratorStep, GlobalStep, Step, StepInput, StepResources, _Step

__all__ = ["GeneratorStep", "GlobalStep", "Step", "StepInput", "StepResources", "_Step"]
