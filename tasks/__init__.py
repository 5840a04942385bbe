"""distilflow tasks: distilabel-style Tasks whose batches run as Prefect task runs.

    from distilflow.tasks import TextGeneration
    from distilflow.tasks.models import OpenAILLM

    task = TextGeneration(llm=OpenAILLM(model="gpt-4o-mini"))
    task.load()
    rows = next(task.process([{"instruction": "What's the capital of Spain?"}]))
"""

from distilflow.tasks.apigen_generator import APIGenGenerator
from distilflow.tasks.apigen_semantic_checker import APIGenSemanticChecker
from distilflow.tasks.base import DISTILABEL_METADATA_KEY, ImageTask, Task
from distilflow.tasks.complexity_scorer import ComplexityScorer
from distilflow.tasks.decorator import task
from distilflow.tasks.errors import (
    BatchesFailedError, DistilflowError, DistilflowUserError, ModelConfigurationError, ModelRequestError,
)
from distilflow.tasks.evol_instruct import EvolInstruct
from distilflow.tasks.evol_quality import EvolQuality
from distilflow.tasks.image_generation import ImageGeneration
from distilflow.tasks.quality_scorer import QualityScorer
from distilflow.tasks.text_generation import ChatGeneration, TextGeneration
from distilflow.tasks.text_generation_with_image import TextGenerationWithImage
from distilflow.tasks.ultrafeedback import UltraFeedback

__all__ = [
    "DISTILABEL_METADATA_KEY",
    "APIGenGenerator",
    "APIGenSemanticChecker",
    "ComplexityScorer",
    "EvolQuality",
    "QualityScorer",
    "BatchesFailedError",
    "ChatGeneration",
    "DistilflowError",
    "DistilflowUserError",
    "EvolInstruct",
    "ImageGeneration",
    "ImageTask",
    "ModelConfigurationError",
    "ModelRequestError",
    "Task",
    "TextGeneration",
    "TextGenerationWithImage",
    "UltraFeedback",
    "task",
]
