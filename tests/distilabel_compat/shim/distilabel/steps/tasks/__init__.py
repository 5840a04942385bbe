from distilflow.tasks import *  # noqa: F403
from distilflow.tasks.steps.apigen import APIGenExecutionChecker  # noqa: F401 - distilabel exports it here
