from distilflow.tasks.steps.columns.group import GroupColumns

__all__ = ["GroupColumns"]
