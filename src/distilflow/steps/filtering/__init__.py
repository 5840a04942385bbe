"""Steps that drop rows.

    from distilflow.steps.filtering import KeepPassingRows
"""

from distilflow.steps.filtering.keep_passing_rows import KeepPassingRows

__all__ = ["KeepPassingRows"]
