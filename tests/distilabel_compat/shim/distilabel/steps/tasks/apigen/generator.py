from distilflow.tasks.apigen_generator import APIGenGenerator

__all__ = ["APIGenGenerator"]
