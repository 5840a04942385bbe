"""distilabel's exceptions that a step may raise and a pipeline handles (`distilabel.exceptions`)."""

__all__ = ["DistilabelException", "DistilabelGenerationException"]


class DistilabelException(Exception):
    """An exception a pipeline may handle gracefully."""


class DistilabelGenerationException(DistilabelException):
    """A model failed to generate."""
