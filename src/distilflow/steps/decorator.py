"""`@step`: a step class from a function (distilabel's decorator).

    @step(inputs=["instruction"], outputs=["length"])
    def Length(inputs: StepInput, unit: RuntimeParameter[str] = "chars") -> StepOutput:
        yield [{**row, "length": len(row["instruction"])} for row in inputs]

The parameter annotated `StepInput` receives the rows; every other parameter becomes a run-time
parameter of the step (required when it has no default), passed to the function by name.
`step_type="global"` makes a `GlobalStep`, `"generator"` a `GeneratorStep`.
"""

from __future__ import annotations

import inspect
import types
import typing
from typing import Any, Callable, Union

from pydantic import create_model

from distilflow.errors import DistilflowUserError
from distilflow.steps.base import STEP_INPUT, GeneratorStep, GlobalStep, Step, StepInput, _Step
from distilflow.typing import RUNTIME_PARAMETER, RuntimeParameter, StepColumns

__all__ = ["step"]

_KINDS: dict[str, type[_Step]] = {"normal": Step, "global": GlobalStep, "generator": GeneratorStep}


def step(
    inputs: Union[StepColumns, None] = None,
    outputs: Union[StepColumns, None] = None,
    step_type: str = "normal",
) -> Callable[[Callable[..., Any]], type[_Step]]:
    """Build a step class named after the decorated function."""
    if step_type not in _KINDS:
        raise ValueError(f"Invalid step type '{step_type}'. Please, use one of: {', '.join(_KINDS)}.")
    base = _KINDS[step_type]

    def decorator(func: Callable[..., Any]) -> type[_Step]:
        hints = _parameter_hints(func)
        signature = inspect.signature(func)
        row_parameters = [name for name in signature.parameters if hints.get(name) is StepInput
                          or STEP_INPUT in getattr(hints.get(name), "__metadata__", ())]
        if len(row_parameters) > 1:
            raise ValueError(
                f"Function '{func.__name__}' has more than one parameter annotated with `StepInput`. Please, review "
                f"the '{func.__name__}' function to have only one argument annotated with `StepInput`."
            )
        fields: dict[str, Any] = {}
        for name, parameter in signature.parameters.items():
            if name in row_parameters or (name == "offset" and base is GeneratorStep) or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                continue
            annotation = hints.get(name, Any)
            if RUNTIME_PARAMETER not in getattr(annotation, "__metadata__", ()):
                annotation = RuntimeParameter[annotation]  # every extra parameter is set when the pipeline runs
            default = ... if parameter.default is parameter.empty else parameter.default
            fields[name] = (annotation, default if default is not ... else None)
        takes_offset = "offset" in signature.parameters and base is GeneratorStep
        required = [name for name in fields if signature.parameters[name].default is inspect.Parameter.empty]

        def process(self: _Step, *args: Any, **kwargs: Any) -> Any:
            if base is GeneratorStep:
                if not takes_offset:
                    kwargs.pop("offset", None)
                if row_parameters:  # a generator has no input rows
                    kwargs[row_parameters[0]] = []
            missing = [name for name in required if kwargs.get(name) is None]
            if missing:
                raise DistilflowUserError(
                    f"Step '{self.name}' needs run-time parameter(s) {missing}: give them in "
                    f"`pipeline.run(parameters={{'{self.name}': {{'{missing[0]}': ...}}}})` or when creating the step."
                )
            return func(*args, **kwargs)

        columns = {
            "inputs": property(lambda self: _copy(inputs)),
            "outputs": property(lambda self: _copy(outputs)),
        }
        model = create_model(  # type: ignore[call-overload]
            func.__name__, __base__=base, __module__=func.__module__, __doc__=func.__doc__, **fields
        )
        for name, value in {**columns, "process": process}.items():
            setattr(model, name, value)
        model._built_from_decorator = True
        model._step_function = func  # its code (the step cache's key is made from it)
        model.__abstractmethods__ = frozenset()
        return model

    return decorator


def _copy(columns: Union[StepColumns, None]) -> StepColumns:
    """A fresh copy of the declared columns: a list of names, or name -> required."""
    return dict(columns) if isinstance(columns, dict) else list(columns or [])


def _parameter_hints(func: Callable[..., Any]) -> dict[str, Any]:
    """The parameters' annotations, resolved one by one.

    With `from __future__ import annotations` they are strings, and a name imported only under
    `TYPE_CHECKING` (often the return's `StepOutput`) cannot be resolved: the return is not read,
    and a parameter whose annotation cannot be resolved counts as `StepInput` when it names it.
    """
    hints: dict[str, Any] = {}
    for name, annotation in getattr(func, "__annotations__", {}).items():
        if name == "return":
            continue
        holder = types.SimpleNamespace(__annotations__={name: annotation}, __globals__=getattr(func, "__globals__", {}))
        try:
            hints[name] = typing.get_type_hints(holder, include_extras=True)[name]
        except (NameError, TypeError, SyntaxError):
            hints[name] = StepInput if "StepInput" in str(annotation) else Any
    return hints
