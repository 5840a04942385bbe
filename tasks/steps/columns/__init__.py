"""Column steps: keep, merge, group, combine and expand the columns of rows (distilabel's names and shapes)."""

from distilflow.tasks.steps.columns.combine import CombineOutputs
from distilflow.tasks.steps.columns.expand import ExpandColumns
from distilflow.tasks.steps.columns.group import GroupColumns
from distilflow.tasks.steps.columns.keep import KeepColumns
from distilflow.tasks.steps.columns.merge import MergeColumns
from distilflow.tasks.steps.columns.utils import merge_distilabel_metadata

__all__ = ["CombineOutputs", "ExpandColumns", "GroupColumns", "KeepColumns", "MergeColumns", "merge_distilabel_metadata"]
