"""Run-time parameters: settings a step or model may be given when the pipeline runs (distilabel's).

A field annotated `RuntimeParameter[T]` (or `Optional[RuntimeParameter[T]]`) can be set after the
object is built, through `set_runtime_parameters({...})`, nested for the model:
`task.set_runtime_parameters({"input_batch_size": 20, "llm": {"generation_kwargs": {"temperature": 0.7}}})`.
`runtime_parameters_names` says which exist and whether each may be left unset (True) or must be
given (False); a model's `generation_kwargs` lists its generation settings the same way.
"""

from __future__ import annotations

import inspect
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from distilflow.errors import DistilflowUserError
from distilflow.typing import RUNTIME_PARAMETER, RuntimeParameter

__all__ = ["RuntimeParameter", "RuntimeParametersMixin"]


class RuntimeParametersMixin(BaseModel):
    @property
    def runtime_parameters_names(self) -> dict[str, Any]:
        names: dict[str, Any] = {}
        for name, info in type(self).model_fields.items():
            runtime, optional = _runtime_parameter(info)
            if runtime:
                names[name] = optional
                continue
            value = getattr(self, name, None)
            if isinstance(value, RuntimeParametersMixin):
                names[name] = value.runtime_parameters_names
        return names

    def set_runtime_parameters(self, parameters: dict[str, Any]) -> None:
        """Set run-time parameters by name; a nested dict sets those of a field that has its own (the model)."""
        names = self.runtime_parameters_names
        for name, value in parameters.items():
            if name not in names:
                raise DistilflowUserError(
                    f"{type(self).__name__} has no run-time parameter {name!r}; it has {sorted(names)}. "
                    "Fix the name in the parameters."
                )
            current = getattr(self, name)
            if isinstance(current, RuntimeParametersMixin) and isinstance(value, dict):
                current.set_runtime_parameters(value)
            elif name == "generation_kwargs" and isinstance(value, dict):
                setattr(self, name, {**(current or {}), **value})  # added to, as in distilabel
            else:
                try:
                    setattr(self, name, value)
                except ValidationError as e:
                    problem = "; ".join(error["msg"] for error in e.errors())
                    raise DistilflowUserError(
                        f"{type(self).__name__} run-time parameter {name}={value!r}: {problem}. Give a valid value."
                    ) from None


def _runtime_parameter(info: FieldInfo) -> tuple[bool, bool]:
    """(is it a run-time parameter, may it be left unset)."""
    if RUNTIME_PARAMETER in info.metadata:  # `x: RuntimeParameter[int]`: given when run, unless it has a default
        return True, info.default is not None
    args = get_args(info.annotation)
    for arg in args:  # `x: Optional[RuntimeParameter[int]] = None`: may be left unset
        if get_origin(arg) is Annotated and get_args(arg)[-1] == RUNTIME_PARAMETER:
            return True, get_origin(info.annotation) is Union and type(None) in args
    return False, False


def generation_parameters(method: Any, framework: set[str]) -> dict[str, bool]:
    """A generate method's settings: name -> whether it may be left unset (it has a default)."""
    return {
        name: p.default is not inspect.Parameter.empty
        for name, p in inspect.signature(method).parameters.items()
        if name not in framework and p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
    }
