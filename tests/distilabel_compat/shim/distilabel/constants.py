from distilflow.tasks.base import DISTILABEL_METADATA_KEY

__all__ = ["DISTILABEL_METADATA_KEY"]
