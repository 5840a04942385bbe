"""APIGen (`distilabel.steps.tasks.apigen`): generating function-calling data and checking it.

`APIGenGenerator` writes queries and the calls that answer them, `APIGenExecutionChecker` runs the
calls against a library of Python functions (no model), `APIGenSemanticChecker` asks a model
whether the calls answer the query.
"""

from distilflow.steps.tasks.apigen.execution_checker import APIGenExecutionChecker
from distilflow.steps.tasks.apigen.generator import APIGenGenerator
from distilflow.steps.tasks.apigen.semantic_checker import APIGenSemanticChecker

__all__ = ["APIGenExecutionChecker", "APIGenGenerator", "APIGenSemanticChecker"]
