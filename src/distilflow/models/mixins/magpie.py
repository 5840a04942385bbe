"""`MagpieChatTemplateMixin`: distilabel's Magpie settings, accepted on model clients.

Magpie asks a model for raw completions of its own chat template (the pre-query part), which
OpenAI-compatible chat endpoints do not expose. The settings are accepted so distilabel code
builds unchanged; turning Magpie on is refused before any request, with the reason.
"""

from __future__ import annotations

import logging
from typing import Union

from pydantic import BaseModel, model_validator

from distilflow.errors import DistilflowUserError

__all__ = ["MagpieChatTemplateMixin"]

_log = logging.getLogger("distilflow.models")


class MagpieChatTemplateMixin(BaseModel, validate_assignment=True):
    use_magpie_template: bool = False
    magpie_pre_query_template: Union[str, None] = None

    @model_validator(mode="after")
    def _magpie_is_not_supported_yet(self):
        if self.use_magpie_template:
            raise DistilflowUserError(
                f"{type(self).__name__}: use_magpie_template=True needs raw completions of the model's chat "
                "template, which distilflow's clients do not make yet; remove it (Magpie is not supported)."
            )
        if self.magpie_pre_query_template is not None:
            _log.warning(
                "%s: magpie_pre_query_template is accepted for distilabel compatibility and unused "
                "(use_magpie_template is off).", type(self).__name__,
            )
        return self
