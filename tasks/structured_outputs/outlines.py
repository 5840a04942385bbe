"""distilabel's path for the structured-output type (`distilabel.steps.tasks.structured_outputs.outlines`).

Its home is `distilflow.typing`; distilflow sends the schema to the server (no local `outlines`).
"""

from distilflow.typing import StructuredOutputType

__all__ = ["StructuredOutputType"]
