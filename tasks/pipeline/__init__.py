"""Pipelines: distilabel's graph of steps (`with Pipeline(...)`, `>>`, routing), free of Prefect."""

from distilflow.tasks.pipeline.distiset import Distiset
from distilflow.tasks.pipeline.graph import Pipeline
from distilflow.tasks.pipeline.routing import RoutingBatchFunction, routing_batch_function, sample_n_steps

__all__ = ["Distiset", "Pipeline", "RoutingBatchFunction", "routing_batch_function", "sample_n_steps"]
