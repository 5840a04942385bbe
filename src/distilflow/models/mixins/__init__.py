"""Behaviour a model client can take on (`distilabel.models.mixins`)."""

from distilflow.models.mixins.magpie import MagpieChatTemplateMixin

__all__ = ["MagpieChatTemplateMixin"]
