from distilflow.tasks.apigen_semantic_checker import APIGenSemanticChecker

__all__ = ["APIGenSemanticChecker"]
