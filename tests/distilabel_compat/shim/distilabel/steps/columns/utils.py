from distilflow.tasks.steps.columns.utils import merge_distilabel_metadata

__all__ = ["merge_distilabel_metadata"]
