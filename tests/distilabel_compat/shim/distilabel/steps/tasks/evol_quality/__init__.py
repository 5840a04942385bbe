from distilflow.tasks.evol_quality import EvolQuality

__all__ = ["EvolQuality"]
