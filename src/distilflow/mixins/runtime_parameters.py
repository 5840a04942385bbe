"""Run-time parameters: settings a step or model may be given when the pipeline runs (distilabel's).

A field annotated `RuntimeParameter[T]` (or `Optional[RuntimeParameter[T]]`) can be set after the
object is built, through `set_runtime_parameters({...})`, nested for the model:
`task.set_runtime_parameters({"input_batch_size": 20, "llm": {"generation_kwargs": {"temperature": 0.7}}})`.
`runtime_parameters_names` says which exist and whether each may be left unset (True) or must be
given (False); a model's `generation_kwargs` lists its generation settings the same way.
"""

from __future__ import annotations

import difflib
import inspect
import logging
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic.fields import FieldInfo

from distilflow.errors import DistilflowUserError
from distilflow.typing import RUNTIME_PARAMETER, RuntimeParameter

__all__ = ["RuntimeParameter", "RuntimeParametersMixin"]

_log = logging.getLogger("distilflow.steps")


class RuntimeParametersMixin(BaseModel):
    @property
    def runtime_parameters_names(self) -> dict[str, Any]:
        """name -> may it be left unset; a nested object (the model) or a list of them by index, nested."""
        names: dict[str, Any] = {}
        for name, info in type(self).model_fields.items():
            runtime, optional = _runtime_parameter(info)
            if runtime:
                names[name] = optional
                continue
            value = getattr(self, name, None)
            if isinstance(value, RuntimeParametersMixin):
                names[name] = value.runtime_parameters_names
            elif _mixins(value):
                names[name] = {str(i): item.runtime_parameters_names for i, item in enumerate(value)}
        return names

    def get_runtime_parameters_info(self) -> list[dict[str, Any]]:
        """What the run-time parameters are: name, description and whether each is optional (for forms, docs)."""
        names = self.runtime_parameters_names
        info: list[dict[str, Any]] = []
        for name, field in type(self).model_fields.items():
            if name not in names:
                continue
            value = getattr(self, name, None)
            if isinstance(value, RuntimeParametersMixin):
                info.append({"name": name, "runtime_parameters_info": value.get_runtime_parameters_info()})
            elif _mixins(value):
                info.append({"name": name, "runtime_parameters_info": {
                    str(i): item.get_runtime_parameters_info() for i, item in enumerate(value)
                }})
            else:
                entry = {"name": name, "optional": names[name]}
                if field.description is not None:
                    entry["description"] = field.description
                info.append(entry)
        return info

    def set_runtime_parameters(self, parameters: dict[str, Any]) -> None:
        """Set run-time parameters by name; a nested dict sets those of a field that has its own (the model).

        A name that is not a run-time parameter is skipped with a warning naming the close ones, as
        distilabel does (a pipeline's parameters may hold settings for other versions of a step).
        """
        names = self.runtime_parameters_names
        for name, value in parameters.items():
            if name not in names:
                close = difflib.get_close_matches(name, list(names), cutoff=0.5)
                _log.warning(
                    "%s%s has no run-time parameter %r, so it is ignored; %s", type(self).__name__,
                    f" '{self.name}'" if isinstance(getattr(self, "name", None), str) else "", name,
                    f"did you mean {close}?" if close else f"its run-time parameters are {sorted(names)}.",
                )
                continue
            current = getattr(self, name)
            if isinstance(current, RuntimeParametersMixin) and isinstance(value, dict):
                current.set_runtime_parameters(value)
            elif _mixins(current) and isinstance(value, dict):
                for i, item in enumerate(current):
                    item.set_runtime_parameters(value.get(str(i), {}))
            elif name == "generation_kwargs" and isinstance(value, dict):
                setattr(self, name, {**(current or {}), **value})  # added to, as in distilabel
            else:
                try:
                    setattr(self, name, _as_declared(type(self).model_fields[name], value))
                except ValidationError as e:
                    problem = "; ".join(error["msg"] for error in e.errors())
                    raise DistilflowUserError(
                        f"{type(self).__name__} run-time parameter {name}={value!r}: {problem}. Give a valid value."
                    ) from None


def _mixins(value: Any) -> bool:
    """A list of objects with run-time parameters of their own (distilabel numbers them "0", "1", ...)."""
    return isinstance(value, list) and bool(value) and isinstance(value[0], RuntimeParametersMixin)


def _as_declared(field: FieldInfo, value: Any) -> Any:
    """A plain string given for a secret field becomes the secret (models without assignment validation)."""
    if isinstance(value, str):
        for kind in _inner_types(field.annotation):
            if isinstance(kind, type) and issubclass(kind, (SecretStr,)):
                return kind(value)
    return value


def _inner_types(annotation: Any) -> list[Any]:
    if get_origin(annotation) is Annotated:
        return _inner_types(get_args(annotation)[0])
    if get_origin(annotation) is Union:
        return [t for arg in get_args(annotation) for t in _inner_types(arg)]
    return [annotation]


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
