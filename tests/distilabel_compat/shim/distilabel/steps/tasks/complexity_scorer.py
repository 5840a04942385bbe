from distilflow.tasks.complexity_scorer import ComplexityScorer

__all__ = ["ComplexityScorer"]
