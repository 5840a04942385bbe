"""distilflow: synthetic-data generation with LLMs and image models, as distilabel-style Tasks run as Prefect flows.

    from distilflow import OpenAILLM, TextGeneration

    task = TextGeneration(llm=OpenAILLM(model="gpt-4o-mini"))
    task.load()
    rows = next(task.process([{"instruction": "What's the capital of Spain?"}]))

The names below are the public API. The subpackages follow distilabel's map (`distilflow.models`,
`distilflow.steps`, `distilflow.steps.tasks`, `distilflow.pipeline`, `distilflow.distiset`, ...: a
distilabel script moves with `sed s/distilabel/distilflow/`); `distilflow.runner` runs them on
Prefect, `distilflow.storage` keeps data, `distilflow.flows` holds runnable pipelines. Names are imported on first use, so `import distilflow` does
not load Prefect or the storage libraries until a runner or storage name is asked for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module that defines it (distilabel's map: models, steps, steps.tasks, pipeline, distiset)
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(
        [
            "APIGenExecutionChecker", "APIGenGenerator", "APIGenSemanticChecker", "ChatGeneration", "ComplexityScorer",
            "EvolInstruct", "EvolQuality", "ImageGeneration", "ImageTask", "QualityScorer", "Task", "TextGeneration",
            "TextGenerationWithImage", "UltraFeedback", "task",
        ],
        "distilflow.steps.tasks",
    ),
    "DISTILABEL_METADATA_KEY": "distilflow.constants",
    **dict.fromkeys(
        [
            "BatchesFailedError", "DistilflowError", "DistilflowUserError", "ModelConfigurationError",
            "ModelRequestError",
        ],
        "distilflow.errors",
    ),
    **dict.fromkeys(
        [
            "LLM", "AsyncImageGenerationModel", "AsyncLLM", "DummyAsyncLLM", "DummyImageGenerationModel", "DummyLLM",
            "ImageGenerationModel", "InferenceEndpointsLLM", "OpenAIImageGeneration", "OpenAILLM",
        ],
        "distilflow.models",
    ),
    **dict.fromkeys(
        [
            "CombineOutputs", "ConversationTemplate", "DataSampler", "ExpandColumns", "FormatChatGenerationDPO",
            "FormatChatGenerationSFT", "FormatTextGenerationDPO", "FormatTextGenerationSFT", "GeneratorStep",
            "GlobalStep", "GroupColumns", "KeepColumns", "LoadDataFromDicts", "LoadDataFromDisk",
            "LoadDataFromFileSystem", "LoadDataFromHub", "MergeColumns", "Step", "StepInput", "StepOutput", "GeneratorStepOutput",
            "make_generator_step", "step", "DeitaFiltering", "KeepPassingRows",
        ],
        "distilflow.steps",
    ),
    **dict.fromkeys(["Pipeline", "routing_batch_function", "sample_n_steps"], "distilflow.pipeline"),
    "Distiset": "distilflow.distiset",
    **dict.fromkeys(["RunOptions", "RunResult", "StepSummary", "run_tasks"], "distilflow.runner"),
    "Simulator": "distilflow.simulator",
    **dict.fromkeys(["DatasetWriter", "answer_store", "read_rows", "save_image", "write_rows"], "distilflow.storage"),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'distilflow' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # imported once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # what the names are, for type checkers and editors
    from distilflow.constants import DISTILABEL_METADATA_KEY
    from distilflow.distiset import Distiset
    from distilflow.errors import (
        BatchesFailedError, DistilflowError, DistilflowUserError, ModelConfigurationError, ModelRequestError,
    )
    from distilflow.models import (
        LLM, AsyncImageGenerationModel, AsyncLLM, DummyAsyncLLM, DummyImageGenerationModel, DummyLLM,
        ImageGenerationModel, InferenceEndpointsLLM, OpenAIImageGeneration, OpenAILLM,
    )
    from distilflow.pipeline import Pipeline, routing_batch_function, sample_n_steps
    from distilflow.runner import RunOptions, RunResult, StepSummary, run_tasks
    from distilflow.simulator import Simulator
    from distilflow.steps import (
        CombineOutputs, ConversationTemplate, DataSampler, DeitaFiltering, ExpandColumns, FormatChatGenerationDPO,
        FormatChatGenerationSFT, FormatTextGenerationDPO, FormatTextGenerationSFT, GeneratorStep, GeneratorStepOutput,
        GlobalStep, GroupColumns, KeepColumns, KeepPassingRows, LoadDataFromDicts, LoadDataFromDisk,
        LoadDataFromFileSystem, LoadDataFromHub, MergeColumns, Step, StepInput, StepOutput, make_generator_step, step,
    )
    from distilflow.steps.tasks import (
        APIGenExecutionChecker, APIGenGenerator, APIGenSemanticChecker, ChatGeneration, ComplexityScorer, EvolInstruct,
        EvolQuality, ImageGeneration, ImageTask, QualityScorer, Task, TextGeneration, TextGenerationWithImage,
        UltraFeedback, task,
    )
    from distilflow.storage import DatasetWriter, answer_store, read_rows, save_image, write_rows
