from distilflow.tasks.steps.columns import (
    CombineOutputs, ExpandColumns, GroupColumns, KeepColumns, MergeColumns, merge_distilabel_metadata,
)

__all__ = ["CombineOutputs", "ExpandColumns", "GroupColumns", "KeepColumns", "MergeColumns", "merge_distilabel_metadata"]
