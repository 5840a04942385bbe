"""A local double of the Hugging Face Hub, for tests and offline use (`HubDouble`, `distilflow-hub`)."""

from distilflow.hub.server import HubDouble

__all__ = ["HubDouble"]
