from distilflow.tasks.evol_instruct import MUTATION_TEMPLATES

__all__ = ["MUTATION_TEMPLATES"]
