from distilflow.tasks import UltraFeedback

__all__ = ["UltraFeedback"]
