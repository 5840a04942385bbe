"""Errors raised by distilflow.

Two families matter to callers:

* `DistilflowUserError`: the configuration or the data is wrong. It is raised before any model
  request is spent and its message says what to change.
* `ModelRequestError`: a model server refused or failed a request. `transient` tells whether
  trying again later can help (rate limits, outages, timeouts) or not (a 400, a bad key).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BatchesFailedError",
    "DistilabelError",
    "DistilabelNotImplementedError",
    "DistilabelTypeError",
    "DistilabelUserError",
    "DistilflowError",
    "DistilflowUserError",
    "InvalidSettingsError",
    "ModelConfigurationError",
    "ModelServerUnavailableError",
    "ModelRequestError",
]

#: Answers that say the client is set up wrong (key, permissions, billing, model name, URL), not
#: that one request was bad: every other request would get the same answer.
CONFIGURATION_STATUSES = frozenset({401, 402, 403, 404, 405})


class DistilflowError(Exception):
    """Base class of every error distilflow raises on purpose."""


class DistilflowUserError(DistilflowError, ValueError):
    """Bad configuration or bad input rows; the message names the problem and the fix.

    Also a ValueError, as distilabel's DistilabelUserError is, so `except ValueError` catches it.
    """


#: distilabel's names (`distilabel.errors`), so a migrated script's `except` clauses keep working
DistilabelError = DistilflowError
DistilabelUserError = DistilflowUserError


class DistilabelTypeError(DistilflowError, TypeError):
    """A value of the wrong type (distilabel's name)."""


class DistilabelNotImplementedError(DistilflowError, NotImplementedError):
    """Something a step or model does not implement (distilabel's name)."""


class InvalidSettingsError(DistilflowUserError, ValueError):
    """Arguments a task or model client refuses (a wrong type, a value out of range), in one line.

    Also a ValueError, as the pydantic error it replaces was, so `except ValueError` still works.
    """

    @classmethod
    def from_validation(cls, owner: str, error: Any) -> InvalidSettingsError:
        """One line naming each refused argument, instead of pydantic's multi-line report."""
        problems = []
        for item in error.errors(include_url=False):
            name = ".".join(str(part) for part in item["loc"]) or "arguments"
            given = "" if item["type"] == "missing" else f"={item['input']!r:.80}"
            problems.append(f"{name}{given}: {item['msg']}")
        fix = "Fix this argument." if len(problems) == 1 else "Fix these arguments."
        return cls(f"{owner}: {'; '.join(problems)}. {fix}")


class BatchesFailedError(DistilflowError):
    """Some batches of a run failed; the message names them and the first error.

    Raised by a flow called without `return_state=True`. The rows of the other batches were
    delivered (and cached), so running again re-sends only the failed batches. `result` holds
    what the flow would have returned had every batch succeeded (e.g. the `RunResult`).
    """

    def __init__(self, message: str, result: object = None):
        super().__init__(message)
        self.result = result

    def __reduce__(self):
        return (type(self), (str(self), self.result))


class ModelRequestError(DistilflowError):
    """A model server answered with an error, or could not be reached.

    `transient` is True for failures that may succeed on a later attempt (connection errors,
    timeouts, 408/409/429/5xx) once the client's own retries are spent; False for answers that
    will not change (400-class). `code` is the server's own error code when it sent one
    (`context_length_exceeded`, `content_policy_violation`, ...).

    A non-transient error is about one request (its row fails alone) unless it is a
    `ModelConfigurationError`, which stops the run.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        transient: bool = False,
        code: str | None = None,
        server_message: str | None = None,
    ):
        super().__init__(message)
        self.status_code = status_code
        self.transient = transient
        self.code = code
        self.server_message = server_message  # what the server said, without our context around it

    def __reduce__(self):  # keep the attributes through pickling (Prefect stores failures)
        return (
            _rebuild_model_request_error,
            (type(self), str(self), self.status_code, self.transient, self.code, self.server_message),
        )


class ModelConfigurationError(ModelRequestError, DistilflowUserError):
    """The server refused the client itself (401/403 key, 402 billing, 404 model or URL): fix the settings.

    No request can succeed until then, so the run stops at once; its message names the fix.
    """


class ModelServerUnavailableError(ModelConfigurationError):
    """The model server did not answer for `max_outage_seconds`: the run stops (as on a configuration
    error) with every answer it received kept; running again once the server is back sends the rest."""


def model_request_error(message: str, *, status_code: int | None = None, **details: Any) -> ModelRequestError:
    """The right error class for a failed request: configuration errors stop runs, others fail a row."""
    cls = ModelConfigurationError if status_code in CONFIGURATION_STATUSES else ModelRequestError
    return cls(message, status_code=status_code, **details)


def _rebuild_model_request_error(cls, message, status_code, transient, code=None, server_message=None):
    return cls(message, status_code=status_code, transient=transient, code=code, server_message=server_message)
