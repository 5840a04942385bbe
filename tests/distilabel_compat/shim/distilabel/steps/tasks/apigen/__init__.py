from distilflow.tasks.apigen_generator import APIGenGenerator
from distilflow.tasks.apigen_semantic_checker import APIGenSemanticChecker
from distilflow.tasks.steps.apigen import APIGenExecutionChecker

__all__ = ["APIGenExecutionChecker", "APIGenGenerator", "APIGenSemanticChecker"]
