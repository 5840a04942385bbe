from distilflow.tasks.errors import DistilflowError as DistilabelError
from distilflow.tasks.errors import DistilflowUserError as DistilabelUserError

__all__ = ["DistilabelError", "DistilabelUserError"]
