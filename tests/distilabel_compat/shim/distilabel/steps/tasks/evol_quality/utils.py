from distilflow.tasks.evol_quality import MUTATION_TEMPLATES

__all__ = ["MUTATION_TEMPLATES"]
