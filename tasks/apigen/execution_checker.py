"""`APIGenExecutionChecker`: run each generated function call against the real function, no model involved.

The second stage of APIGen (https://arxiv.org/abs/2406.18518): a call that names no function of
the library, has arguments the function refuses, raises, or runs too long fails the row; the
results (or errors) of every call are kept for the semantic check. Arguments, columns and row
shapes follow distilabel 1.5.3's `APIGenExecutionChecker`. Nothing but the library's own
functions ever runs: see `function_library` (which functions) and `function_call` (how).
"""

from __future__ import annotations

import json
import logging
from typing import Any, Union

from pydantic import Field, PositiveFloat, PrivateAttr

from distilflow.steps.tasks.apigen.call_worker import CallWorker
from distilflow.steps.tasks.apigen.function_call import DEFAULT_TIMEOUT
from distilflow.steps.base import Step, StepInput, StepOutput
from distilflow.typing import StepColumns

__all__ = ["APIGenExecutionChecker"]

_logger = logging.getLogger("distilflow.steps.tasks")


class APIGenExecutionChecker(Step):
    """Execute the calls in each row's `answers` with the functions at `libpath`.

    `libpath` is a Python file defining the functions, or a folder of `<name>.py` files each
    defining the function `<name>`. Every call of a row runs in a worker process of the step's,
    for at most `timeout` seconds (a late call's worker is killed); the row is kept only when all
    of them returned. A missing or empty
    `answers`, answers that are not JSON, an unknown function, arguments the function does not
    take, an exception, or a timeout are failures, recorded in `execution_result`, never raised.

    Input columns: `answers` (str: the JSON list of calls `[{"name": ..., "arguments": {...}}]`,
    as `APIGenGenerator` makes it; a list is taken as it is).
    Output columns: `keep_row_after_execution_check` (bool), `execution_result` (list of str,
    one per call: `str()` of what it returned, or why it failed).
    """

    libpath: str = Field(
        default=...,
        description="The Python file defining the functions, or a folder of <function name>.py files.",
    )
    check_is_dangerous: bool = Field(
        default=True,
        description="Refuse functions whose source starts processes, exits, evaluates code or reads input (heuristics).",
    )
    timeout: PositiveFloat = Field(default=DEFAULT_TIMEOUT, description="Seconds a call may run before it fails.")

    _worker: Union[CallWorker, None] = PrivateAttr(default=None)

    @property
    def inputs(self) -> StepColumns:
        return ["answers"]

    @property
    def outputs(self) -> StepColumns:
        return ["keep_row_after_execution_check", "execution_result"]

    def load(self) -> None:
        """Start the worker process that imports the library and runs the calls (see `call_worker`);
        a missing or broken library is refused."""
        super().load()
        if self._worker is None:
            worker = CallWorker(self.libpath, self.check_is_dangerous)
            worker.start()
            self._worker = worker

    def unload(self) -> None:
        if self._worker is not None:
            self._worker.close()
            self._worker = None
        super().unload()

    def process(self, *inputs: StepInput) -> StepOutput:
        if self._worker is None:
            self.load()
        for rows in inputs:
            yield [self._checked(row) for row in rows]

    def _checked(self, row: dict[str, Any]) -> dict[str, Any]:
        calls, problem = _calls(row.get("answers"))
        outcomes = [{"keep": False, "execution_result": problem}] if problem else [self._run(c) for c in calls]
        return {
            **row,
            "keep_row_after_execution_check": all(o["keep"] for o in outcomes),
            "execution_result": [o["execution_result"] for o in outcomes],
        }

    def _run(self, call: Any) -> dict[str, Any]:
        if call is None:
            return {"keep": False, "execution_result": "Nothing was generated for this call."}
        if not isinstance(call, dict):
            return {"keep": False, "execution_result": f"{call!r:.80} is not a call: an object with a name and arguments."}
        name, arguments = call.get("name"), call.get("arguments")
        _logger.debug("%s '%s': calling %s with %r", self._kind, self.name, name, arguments)
        return dict(self._worker.call(name, arguments, self.timeout))


def _calls(answers: Any) -> tuple[list[Any], str]:
    """The row's calls, or why there are none to run."""
    if answers is None or answers == "":
        return [], "No answers were provided."
    if isinstance(answers, str):
        try:
            answers = json.loads(answers)
        except ValueError as e:
            return [], f"The answers are not valid JSON: {e}"
    if isinstance(answers, dict):
        answers = [answers]
    if not isinstance(answers, list):
        return [], f"The answers are a {type(answers).__name__}, not a list of calls."
    if not answers:
        return [], "The answers hold no call."
    return answers, ""
