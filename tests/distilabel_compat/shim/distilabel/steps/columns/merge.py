from distilflow.tasks.steps.columns.merge import MergeColumns

__all__ = ["MergeColumns"]
