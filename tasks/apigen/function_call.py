"""Running one generated function call against a real Python function, and saying how it went.

A call comes from a model, so nothing in it is trusted: its string arguments are read as Python
literals only (numbers, lists, dicts, booleans; never code, `ast.literal_eval`), and every
exception it raises becomes the call's result text instead of escaping. Called on its own,
`execute_from_response` runs the call in a thread with a time limit; a late call is abandoned
(Python cannot stop a thread) and runs on in the background. `APIGenExecutionChecker` runs calls
in a worker process instead, which is killed when a call is late (`call_worker`).
"""

from __future__ import annotations

import ast
import inspect
import threading
from typing import Any, Callable, TypedDict, Union

__all__ = ["DEFAULT_TIMEOUT", "FunctionResult", "execute_from_response"]

#: seconds a call may run (distilabel's limit)
DEFAULT_TIMEOUT = 5.0
#: longest result text kept in a row; the rest is cut (the semantic check is told results may be cut)
MAX_RESULT_CHARS = 4000
#: strings longer than this are passed as they are, never parsed
_MAX_LITERAL_CHARS = 100_000


class FunctionResult(TypedDict):
    keep: bool
    execution_result: str


def execute_from_response(
    function: Union[Callable[..., Any], None], call_answer: Union[dict[str, Any], list[Any], None],
    timeout: Union[float, None] = DEFAULT_TIMEOUT,
) -> FunctionResult:
    """Call `function` with the model's `arguments` (`call_answer`); keep is True when it returned.

    Arguments are passed by name when every name is one of the function's parameters, otherwise in
    the order given (distilabel's: the tool's parameter order). A string argument is read as a
    Python literal (`"[1, 2]"` -> `[1, 2]`, `"0.1"` -> `0.1`) unless the parameter is annotated
    `str`; a string that is no literal stays a string. The result is `str()` of what the function
    returned, or the exception's message. With `timeout=None` the call runs in the calling thread
    (`APIGenExecutionChecker` runs calls in a worker process it kills instead: see `call_worker`).
    """
    if function is None:
        return FunctionResult(keep=False, execution_result="Function not found")
    try:
        args, kwargs = _bound(function, call_answer)
    except TypeError as e:
        return FunctionResult(keep=False, execution_result=str(e))
    result, error = _run_with_timeout(function, args, kwargs, timeout)
    if error is None:
        try:
            text = str(result)
        except Exception as e:  # noqa: BLE001 - a result that cannot be shown is a failed call
            error = e
    if error is not None:
        return FunctionResult(keep=False, execution_result=str(error) or type(error).__name__)
    if len(text) > MAX_RESULT_CHARS:
        text = text[:MAX_RESULT_CHARS] + f"... [cut: {len(text)} characters in all]"
    return FunctionResult(keep=True, execution_result=text)


def _bound(function: Callable[..., Any], arguments: Any) -> tuple[list[Any], dict[str, Any]]:
    """Positional and keyword arguments for `function` from the model's `arguments`."""
    if arguments is None or arguments == {}:
        return [], {}
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        parameters = []
    if isinstance(arguments, list):
        return [_literal(value, _at(parameters, i)) for i, value in enumerate(arguments)], {}
    if not isinstance(arguments, dict):
        raise TypeError(f"the arguments are a {type(arguments).__name__}, not a JSON object of parameter names to values")
    by_name = {p.name: p for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    takes_any_name = any(p.kind == p.VAR_KEYWORD for p in parameters)
    if by_name and (takes_any_name or all(name in by_name for name in arguments)):
        return [], {name: _literal(value, by_name.get(name)) for name, value in arguments.items()}
    return [_literal(value, _at(parameters, i)) for i, value in enumerate(arguments.values())], {}


def _at(parameters: list[inspect.Parameter], index: int) -> Union[inspect.Parameter, None]:
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return positional[index] if index < len(positional) else None


def _literal(value: Any, parameter: Union[inspect.Parameter, None]) -> Any:
    """A string argument read as a Python literal when it is one and the parameter does not want text."""
    if not isinstance(value, str) or len(value) > _MAX_LITERAL_CHARS:
        return value
    if parameter is not None and parameter.annotation in (str, "str"):
        return value
    try:
        return ast.literal_eval(value.strip())
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return value


def _run_with_timeout(
    function: Callable[..., Any], args: list[Any], kwargs: dict[str, Any], timeout: Union[float, None]
) -> tuple[Any, Union[BaseException, None]]:
    """What the call returned, or what it raised (SystemExit included) or that it timed out."""
    if timeout is None:
        try:
            return function(*args, **kwargs), None
        except BaseException as e:  # noqa: BLE001 - whatever the generated call did, it is the row's result
            return None, e
    # a thread rather than signal.alarm, which works only in the main thread (batches run in others)
    outcome: dict[str, Any] = {}

    def call() -> None:
        try:
            outcome["value"] = function(*args, **kwargs)
        except BaseException as e:  # noqa: BLE001 - whatever the generated call did, it is the row's result
            outcome["error"] = e

    thread = threading.Thread(target=call, name=f"apigen-call-{getattr(function, '__name__', 'function')}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        return None, TimeoutError(f"the call did not finish within {timeout:g} seconds")
    return outcome.get("value"), outcome.get("error")
