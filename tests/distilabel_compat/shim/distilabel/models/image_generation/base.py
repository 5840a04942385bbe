from distilflow.tasks.models import AsyncImageGenerationModel, ImageGenerationModel

__all__ = ["AsyncImageGenerationModel", "ImageGenerationModel"]
