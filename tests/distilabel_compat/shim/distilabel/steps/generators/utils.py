from distilflow.tasks.steps.generators.utils import make_generator_step

__all__ = ["make_generator_step"]
