from distilflow.tasks import *  # noqa: F403
