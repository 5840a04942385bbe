from distilflow.tasks.models import MagpieChatTemplateMixin

__all__ = ["MagpieChatTemplateMixin"]
