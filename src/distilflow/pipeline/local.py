"""distilabel's path for its pipeline class (`distilabel.pipeline.local`); its home is `distilflow.pipeline.graph`.

distilabel's local pipeline runs steps in processes of one machine; distilflow's runs them as
Prefect task runs, locally or on any worker.
"""

from distilflow.pipeline.graph import Pipeline

__all__ = ["Pipeline"]
