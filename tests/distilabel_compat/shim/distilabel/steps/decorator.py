from distilflow.tasks.steps.decorator import step

__all__ = ["step"]
