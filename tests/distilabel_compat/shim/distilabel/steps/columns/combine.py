from distilflow.tasks.steps.columns.combine import CombineOutputs

__all__ = ["CombineOutputs"]
