"""distilabel's `_Batch` is its Pipeline's internal batch object; distilflow has none.

distilabel's tests/unit/pipeline/utils.py names it (in its `batch_gen` helper), and test modules
import that file for its dummy steps, so the name must exist; none of the tests run here builds one.
"""


class _Batch:
    def __init__(self, *args, **kwargs):
        raise NotImplementedError("distilflow has no _Batch: it is distilabel's Pipeline internals")


__all__ = ["_Batch"]
