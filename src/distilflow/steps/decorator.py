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
import typing
from typing import Any, Callable, Union

from pydantic import create_model

from distilflow.errors import DistilflowUserError
from distilflow.steps.base import STEP_INPUT, GeneratorStep, GlobalStep, Step, _Step
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
        hints = typing.get_type_hints(func, include_extras=True)
        signature = inspect.signature(func)
        row_parameters = [name for name in signature.parameters if STEP_INPUT in getattr(hints.get(name), "__metadata__", ())]
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
            "inputs": property(lambda self: list(inputs or [])),
            "outputs": property(lambda self: list(outputs or [])),
        }
        model = create_model(  # type: ignore[call-overload]
            func.__name__, __base__=base, __module__=func.__module__, __doc__=func.__doc__, **fields
        )
        for name, value in {**columns, "process": process}.items():
            setattr(model, name, value)
        model._built_from_decorator = True
        model.__abstractmethods__ = frozenset()
        return model

    return decorator

