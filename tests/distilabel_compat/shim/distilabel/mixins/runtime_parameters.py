from distilflow.tasks.typing import RuntimeParameter

__all__ = ["RuntimeParameter"]
