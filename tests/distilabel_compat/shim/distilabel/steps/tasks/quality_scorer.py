from distilflow.tasks.quality_scorer import QualityScorer

__all__ = ["QualityScorer"]
