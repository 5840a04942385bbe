"""Steps: the nodes of a pipeline that are not model calls, and the base every task shares.

    from distilflow.tasks.steps import GroupColumns, KeepColumns, LoadDataFromFileSystem, Step, StepInput, step
"""

from distilflow.tasks.steps.apigen import APIGenExecutionChecker
from distilflow.tasks.steps.base import (
    GeneratorStep, GeneratorStepOutput, GlobalStep, Step, StepInput, StepOutput, StepResources,
)
from distilflow.tasks.steps.columns import (
    CombineOutputs, ExpandColumns, GroupColumns, KeepColumns, MergeColumns, merge_distilabel_metadata,
)
from distilflow.tasks.steps.decorator import step
from distilflow.tasks.steps.deita import DeitaFiltering
from distilflow.tasks.steps.filtering import KeepPassingRows
from distilflow.tasks.steps.formatting import (
    ConversationTemplate, FormatChatGenerationDPO, FormatChatGenerationSFT, FormatTextGenerationDPO,
    FormatTextGenerationSFT,
)
from distilflow.tasks.steps.generators import (
    DataSampler, LoadDataFromDataset, LoadDataFromDicts, LoadDataFromDisk, LoadDataFromFileSystem, make_generator_step,
)

__all__ = [
    "APIGenExecutionChecker", "DeitaFiltering", "KeepPassingRows",
    "CombineOutputs", "ConversationTemplate", "DataSampler", "ExpandColumns", "FormatChatGenerationDPO",
    "FormatChatGenerationSFT", "FormatTextGenerationDPO", "FormatTextGenerationSFT", "GeneratorStep",
    "GeneratorStepOutput", "GlobalStep", "GroupColumns", "KeepColumns", "LoadDataFromDataset", "LoadDataFromDicts",
    "LoadDataFromDisk", "LoadDataFromFileSystem", "MergeColumns", "Step", "StepInput", "StepOutput", "StepResources",
    "make_generator_step", "merge_distilabel_metadata", "step",
]
