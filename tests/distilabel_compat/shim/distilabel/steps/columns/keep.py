from distilflow.tasks.steps.columns.keep import KeepColumns

__all__ = ["KeepColumns"]
