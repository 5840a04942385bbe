"""distilflow tasks: distilabel-style Tasks whose batches run as Prefect task runs.

    from tasks import TextGeneration
    from tasks.models import OpenAILLM

    task = TextGeneration(llm=OpenAILLM(model="gpt-4o-mini"))
    task.load()
    rows = next(task.process([{"instruction": "What's the capital of Spain?"}]))
"""

from tasks.base import DISTILABEL_METADATA_KEY, ImageTask, Task
from tasks.decorator import task
from tasks.errors import BatchesFailedError, DistilflowError, DistilflowUserError, ModelRequestError
from tasks.evol_instruct import EvolInstruct
from tasks.image_generation import ImageGeneration
from tasks.text_generation import ChatGeneration, TextGeneration
from tasks.text_generation_with_image import TextGenerationWithImage
from tasks.ultrafeedback import UltraFeedback

__all__ = [
    "DISTILABEL_METADATA_KEY",
    "BatchesFailedError",
    "ChatGeneration",
    "DistilflowError",
    "DistilflowUserError",
    "EvolInstruct",
    "ImageGeneration",
    "ImageTask",
    "ModelRequestError",
    "Task",
    "TextGeneration",
    "TextGenerationWithImage",
    "UltraFeedback",
    "task",
]
