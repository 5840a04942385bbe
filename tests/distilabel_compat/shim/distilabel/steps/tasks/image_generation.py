from distilflow.tasks import ImageGeneration

__all__ = ["ImageGeneration"]
