"""Pipelines: distilabel's graph of steps (`with Pipeline(...)`, `>>`, routing), free of Prefect (`distilabel.pipeline`)."""

from distilflow.pipeline.graph import Pipeline
from distilflow.pipeline.routing_batch_function import RoutingBatchFunction, routing_batch_function, sample_n_steps

__all__ = ["Pipeline", "RoutingBatchFunction", "routing_batch_function", "sample_n_steps"]
