"""Tasks: steps whose rows come from a model (`distilabel.steps.tasks`).

    from distilflow.steps.tasks import TextGeneration
    from distilflow.models import OpenAILLM

    task = TextGeneration(llm=OpenAILLM(model="gpt-4o-mini"))
    task.load()
    rows = next(task.process([{"instruction": "What's the capital of Spain?"}]))

This package is the repository's top-level `tasks/` folder, one task a file, as distilabel lays
them out under `distilabel/steps/tasks/`.
"""

from distilflow.steps.tasks.apigen import APIGenExecutionChecker, APIGenGenerator, APIGenSemanticChecker
from distilflow.steps.tasks.base import ImageTask, Task
from distilflow.steps.tasks.complexity_scorer import ComplexityScorer
from distilflow.steps.tasks.decorator import task
from distilflow.steps.tasks.evol_instruct import EvolInstruct
from distilflow.steps.tasks.evol_quality import EvolQuality
from distilflow.steps.tasks.image_generation import ImageGeneration
from distilflow.steps.tasks.quality_scorer import QualityScorer
from distilflow.steps.tasks.text_generation import ChatGeneration, TextGeneration
from distilflow.steps.tasks.text_generation_with_image import TextGenerationWithImage
from distilflow.steps.tasks.ultrafeedback import UltraFeedback
from distilflow.typing import ChatItem, ChatType

__all__ = [
    "APIGenExecutionChecker",
    "APIGenGenerator",
    "APIGenSemanticChecker",
    "ChatGeneration",
    "ChatItem",
    "ChatType",
    "ComplexityScorer",
    "EvolInstruct",
    "EvolQuality",
    "ImageGeneration",
    "ImageTask",
    "QualityScorer",
    "Task",
    "TextGeneration",
    "TextGenerationWithImage",
    "UltraFeedback",
    "task",
]
