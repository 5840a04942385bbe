"""What a pipeline is, written down: `pipeline.yaml` beside a run's dataset and in its dataset card.

The pipeline's name and description, every step (its class, its settings, its model's class and
settings), the edges and the routing. Written for people and for a record of how a dataset was
made, in distilflow's own format (not distilabel's `dump()`). Secrets never appear: a `SecretStr`,
or any setting whose name says key, token, secret or password, is left out.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, SecretBytes, SecretStr

if TYPE_CHECKING:
    from distilflow.pipeline.graph import Pipeline

__all__ = ["pipeline_description", "pipeline_yaml"]

_SECRET_NAME = re.compile(r"(api_?key|token|secret|password|credential|authorization)", re.I)
_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")
_LIST_ITEMS = 20  # longer lists (a loader's data) are counted, not written
_NOT_SETTINGS = {"name", "pipeline", "resources", "llm", "image_generation_model", "input_mappings", "output_mappings"}


def pipeline_description(pipeline: Pipeline) -> dict[str, Any]:
    steps = []
    for name, step in pipeline.steps.items():
        entry: dict[str, Any] = {"name": name, "class": _class_path(step), "settings": _settings(step, _NOT_SETTINGS)}
        for mapping in ("input_mappings", "output_mappings"):
            if getattr(step, mapping, None):
                entry[mapping] = dict(getattr(step, mapping))
        model = getattr(step, "llm", None) or getattr(step, "image_generation_model", None)
        if model is not None:
            entry["model"] = {"class": _class_path(model), "name": getattr(model, "model_name", None),
                              "settings": _settings(model, set())}
        steps.append(entry)
    edges = [[name, successor] for name in pipeline.steps for successor in pipeline.successors(name)]
    routing = {name: pipeline.routing(name).description for name in pipeline.steps if pipeline.routing(name)}
    description: dict[str, Any] = {"name": pipeline.name, "description": pipeline.description, "steps": steps,
                                   "edges": edges}
    if routing:
        description["routing"] = routing
    return description


def pipeline_yaml(pipeline: Pipeline) -> str:
    import yaml

    return yaml.safe_dump(pipeline_description(pipeline), sort_keys=False, allow_unicode=True, width=100)


def _class_path(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _settings(model: BaseModel, skip: set[str]) -> dict[str, Any]:
    settings = {}
    for name, field in type(model).model_fields.items():
        if name in skip or name.startswith("_") or _SECRET_NAME.search(name) or field.exclude:
            continue
        value = _plain(getattr(model, name, None))
        if value is not _SKIP:
            settings[name] = value
    return settings


_SKIP = object()


def _plain(value: Any) -> Any:
    """A YAML-safe value, or _SKIP for what cannot be written (or must not be: a secret)."""
    if isinstance(value, (SecretStr, SecretBytes)):
        return _SKIP
    if isinstance(value, str):
        return _USERINFO.sub("", value)  # never user:password@ of a URL
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, dict):
        out = {str(k): _plain(v) for k, v in value.items() if not _SECRET_NAME.search(str(k))}
        return {k: v for k, v in out.items() if v is not _SKIP}
    if isinstance(value, (list, tuple, set)):
        if len(value) > _LIST_ITEMS:
            return f"<{len(value)} items>"
        items = [_plain(v) for v in value]
        return [v for v in items if v is not _SKIP]
    if isinstance(value, BaseModel):
        return _settings(value, set())
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    return _SKIP  # functions, clients, arrays: not settings a reader can use
