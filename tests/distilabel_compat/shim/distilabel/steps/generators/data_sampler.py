from distilflow.tasks.steps.generators.data_sampler import DataSampler

__all__ = ["DataSampler"]
