from distilflow.tasks.models import (  # noqa: F401
    AsyncImageGenerationModel, ImageGenerationModel, OpenAIImageGeneration,
)
