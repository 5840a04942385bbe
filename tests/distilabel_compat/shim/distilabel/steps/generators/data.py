from distilflow.tasks.steps.generators.data import LoadDataFromDicts

__all__ = ["LoadDataFromDicts"]
