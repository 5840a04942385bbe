from distilflow.tasks.steps.deita import DeitaFiltering

__all__ = ["DeitaFiltering"]
