"""Errors raised by distilflow.

Two families matter to callers:

* `DistilflowUserError`: the configuration or the data is wrong. It is raised before any model
  request is spent and its message says what to change.
* `ModelRequestError`: a model server refused or failed a request. `transient` tells whether
  trying again later can help (rate limits, outages, timeouts) or not (a 400, a bad key).
"""

from __future__ import annotations

__all__ = ["DistilflowError", "DistilflowUserError", "ModelRequestError"]


class DistilflowError(Exception):
    """Base class of every error distilflow raises on purpose."""


class DistilflowUserError(DistilflowError):
    """Bad configuration or bad input rows; the message names the problem and the fix."""


class ModelRequestError(DistilflowError):
    """A model server answered with an error, or could not be reached.

    `transient` is True for failures that may succeed on a later attempt (connection errors,
    timeouts, 408/409/429/5xx) once the client's own retries are spent; False for answers that
    will not change (400-class), which must fail the batch at once.
    """

    def __init__(self, message: str, *, status_code: int | None = None, transient: bool = False):
        super().__init__(message)
        self.status_code = status_code
        self.transient = transient

    def __reduce__(self):  # keep the attributes through pickling (Prefect stores failures)
        return (_rebuild_model_request_error, (str(self), self.status_code, self.transient))


def _rebuild_model_request_error(message: str, status_code: int | None, transient: bool):
    return ModelRequestError(message, status_code=status_code, transient=transient)
