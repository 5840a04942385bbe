"""Steps: the nodes of a pipeline that are not model calls, and the base every task shares.

    from distilflow.steps import GroupColumns, KeepColumns, LoadDataFromFileSystem, Step, StepInput, step
"""

from distilflow.steps.tasks.apigen import APIGenExecutionChecker
from distilflow.steps.base import (
    GeneratorStep, GeneratorStepOutput, GlobalStep, Step, StepInput, StepOutput, StepResources,
)
from distilflow.steps.columns import (
    CombineOutputs, ExpandColumns, GroupColumns, KeepColumns, MergeColumns, merge_distilabel_metadata,
)
from distilflow.steps.decorator import step
from distilflow.steps.deita import DeitaFiltering
from distilflow.steps.filtering import KeepPassingRows
from distilflow.steps.formatting import (
    ConversationTemplate, FormatChatGenerationDPO, FormatChatGenerationSFT, FormatTextGenerationDPO,
    FormatTextGenerationSFT,
)
from distilflow.steps.generators import (
    DataSampler, LoadDataFromDataset, LoadDataFromDicts, LoadDataFromDisk, LoadDataFromFileSystem, LoadDataFromHub,
    make_generator_step,
)

__all__ = [
    "APIGenExecutionChecker", "DeitaFiltering", "KeepPassingRows",
    "CombineOutputs", "ConversationTemplate", "DataSampler", "ExpandColumns", "FormatChatGenerationDPO",
    "FormatChatGenerationSFT", "FormatTextGenerationDPO", "FormatTextGenerationSFT", "GeneratorStep",
    "GeneratorStepOutput", "GlobalStep", "GroupColumns", "KeepColumns", "LoadDataFromDataset", "LoadDataFromDicts",
    "LoadDataFromDisk", "LoadDataFromFileSystem", "LoadDataFromHub", "MergeColumns", "Step", "StepInput", "StepOutput", "StepResources",
    "make_generator_step", "merge_distilabel_metadata", "step",
]
