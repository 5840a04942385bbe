"""Column steps: keep, merge, group, combine and expand the columns of rows (distilabel's names and shapes)."""

from distilflow.steps.columns.combine import CombineOutputs
from distilflow.steps.columns.expand import ExpandColumns
from distilflow.steps.columns.group import GroupColumns
from distilflow.steps.columns.keep import KeepColumns
from distilflow.steps.columns.merge import MergeColumns
from distilflow.steps.columns.utils import merge_distilabel_metadata

__all__ = ["CombineOutputs", "ExpandColumns", "GroupColumns", "KeepColumns", "MergeColumns", "merge_distilabel_metadata"]
