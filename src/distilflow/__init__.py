"""distilflow: synthetic-data generation with LLMs and image models, as distilabel-style Tasks run as Prefect flows.

    from distilflow import OpenAILLM, TextGeneration

    task = TextGeneration(llm=OpenAILLM(model="gpt-4o-mini"))
    task.load()
    rows = next(task.process([{"instruction": "What's the capital of Spain?"}]))

The names below are the public API; the subpackages (`distilflow.tasks`, `distilflow.storage`,
`distilflow.flows`) hold the rest. Names are imported on first use, so `import distilflow` does
not load Prefect or the storage libraries until a runner or storage name is asked for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(
        [
            "DISTILABEL_METADATA_KEY", "ChatGeneration", "EvolInstruct", "ImageGeneration", "ImageTask", "Task",
            "TextGeneration", "TextGenerationWithImage", "UltraFeedback", "task", "APIGenGenerator",
            "APIGenSemanticChecker", "ComplexityScorer", "EvolQuality", "QualityScorer",
        ],
        "distilflow.tasks",
    ),
    **dict.fromkeys(
        [
            "BatchesFailedError", "DistilflowError", "DistilflowUserError", "ModelConfigurationError",
            "ModelRequestError",
        ],
        "distilflow.tasks.errors",
    ),
    **dict.fromkeys(
        [
            "LLM", "AsyncImageGenerationModel", "AsyncLLM", "DummyAsyncLLM", "DummyImageGenerationModel", "DummyLLM",
            "ImageGenerationModel", "InferenceEndpointsLLM", "OpenAIImageGeneration", "OpenAILLM",
        ],
        "distilflow.tasks.models",
    ),
    **dict.fromkeys(
        [
            "CombineOutputs", "ConversationTemplate", "DataSampler", "ExpandColumns", "FormatChatGenerationDPO",
            "FormatChatGenerationSFT", "FormatTextGenerationDPO", "FormatTextGenerationSFT", "GeneratorStep",
            "GlobalStep", "GroupColumns", "KeepColumns", "LoadDataFromDicts", "LoadDataFromDisk",
            "LoadDataFromFileSystem", "MergeColumns", "Step", "StepInput", "StepOutput", "GeneratorStepOutput",
            "make_generator_step", "step", "APIGenExecutionChecker", "DeitaFiltering", "KeepPassingRows",
        ],
        "distilflow.tasks.steps",
    ),
    **dict.fromkeys(["Distiset", "Pipeline", "routing_batch_function", "sample_n_steps"], "distilflow.tasks.pipeline"),
    **dict.fromkeys(["RunOptions", "RunResult", "StepSummary", "run_tasks"], "distilflow.tasks.runner"),
    **dict.fromkeys(["Simulator"], "distilflow.tasks.simulator"),
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
    from distilflow.storage import DatasetWriter, answer_store, read_rows, save_image, write_rows
    from distilflow.tasks import (
        DISTILABEL_METADATA_KEY, APIGenGenerator, APIGenSemanticChecker, ChatGeneration, ComplexityScorer,
        EvolInstruct, EvolQuality, ImageGeneration, ImageTask, QualityScorer, Task, TextGeneration,
        TextGenerationWithImage, UltraFeedback, task,
    )
    from distilflow.tasks.errors import (
        BatchesFailedError, DistilflowError, DistilflowUserError, ModelConfigurationError, ModelRequestError,
    )
    from distilflow.tasks.models import (
        LLM, AsyncImageGenerationModel, AsyncLLM, DummyAsyncLLM, DummyImageGenerationModel, DummyLLM,
        ImageGenerationModel, InferenceEndpointsLLM, OpenAIImageGeneration, OpenAILLM,
    )
    from distilflow.tasks.pipeline import Distiset, Pipeline, routing_batch_function, sample_n_steps
    from distilflow.tasks.runner import RunOptions, RunResult, StepSummary, run_tasks
    from distilflow.tasks.steps import (
        CombineOutputs, ConversationTemplate, DataSampler, ExpandColumns, FormatChatGenerationDPO,
        FormatChatGenerationSFT, FormatTextGenerationDPO, FormatTextGenerationSFT, GeneratorStep, GeneratorStepOutput,
        GlobalStep, GroupColumns, KeepColumns, LoadDataFromDicts, LoadDataFromDisk, LoadDataFromFileSystem,
        MergeColumns, Step, StepInput, StepOutput, make_generator_step, step, APIGenExecutionChecker,
        DeitaFiltering, KeepPassingRows,
    )
    from distilflow.tasks.simulator import Simulator
