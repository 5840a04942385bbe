"""Pickling support for pydantic models whose private state must not travel.

Connection pools, loop-bound limits, compiled templates and loggers are rebuilt on the receiving
side (another process, a Dask worker) instead of being pickled, and secrets are left behind.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined


def fresh_private_state(model: BaseModel) -> dict[str, Any]:
    """Each private attribute at its declared default (factories called)."""
    state = {}
    for name, attr in model.__private_attributes__.items():
        if attr.default_factory is not None:
            state[name] = attr.default_factory()
        elif attr.default is not PydanticUndefined:
            state[name] = copy.deepcopy(attr.default)
    return state
