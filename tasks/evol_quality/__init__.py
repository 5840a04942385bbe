"""EvolQuality (`distilabel.steps.tasks.evol_quality`)."""

from distilflow.steps.tasks.evol_quality.base import EvolQuality

__all__ = ["EvolQuality"]
