from distilflow.tasks.steps.apigen import APIGenExecutionChecker

__all__ = ["APIGenExecutionChecker"]
