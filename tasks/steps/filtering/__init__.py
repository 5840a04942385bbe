"""Steps that drop rows.

    from distilflow.tasks.steps.filtering import KeepPassingRows
"""

from distilflow.tasks.steps.filtering.keep_passing_rows import KeepPassingRows

__all__ = ["KeepPassingRows"]
