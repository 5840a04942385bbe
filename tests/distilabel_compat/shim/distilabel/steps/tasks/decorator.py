from distilflow.tasks import task

__all__ = ["task"]
