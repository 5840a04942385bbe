from distilflow.tasks.pipeline import Pipeline

__all__ = ["Pipeline"]
