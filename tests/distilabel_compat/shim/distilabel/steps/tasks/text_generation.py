from distilflow.tasks import ChatGeneration, TextGeneration

__all__ = ["ChatGeneration", "TextGeneration"]
