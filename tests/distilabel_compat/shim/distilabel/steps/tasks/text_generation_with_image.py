from distilflow.tasks import TextGenerationWithImage

__all__ = ["TextGenerationWithImage"]
