from distilflow.tasks.pipeline import Pipeline, routing_batch_function, sample_n_steps

__all__ = ["Pipeline", "routing_batch_function", "sample_n_steps"]
