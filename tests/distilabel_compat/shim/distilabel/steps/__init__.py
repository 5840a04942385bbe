from distilflow.tasks import *  # noqa: F403
from distilflow.tasks.steps import *  # noqa: F403
from distilflow.tasks.steps.decorator import step  # noqa: F401
