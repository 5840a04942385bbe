from distilflow.tasks.steps.columns.expand import ExpandColumns

__all__ = ["ExpandColumns"]
