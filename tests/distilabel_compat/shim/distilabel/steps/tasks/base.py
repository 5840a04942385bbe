from distilflow.tasks import ImageTask, Task

__all__ = ["ImageTask", "Task"]
