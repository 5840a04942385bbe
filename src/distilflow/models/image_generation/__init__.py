"""Image model clients (`distilabel.models.image_generation`)."""

from distilflow.models.image_generation.base import AsyncImageGenerationModel, ImageGenerationModel
from distilflow.models.image_generation.openai import OpenAIImageGeneration

__all__ = ["AsyncImageGenerationModel", "ImageGenerationModel", "OpenAIImageGeneration"]
