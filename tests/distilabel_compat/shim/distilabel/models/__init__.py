from distilflow.tasks.models import *  # noqa: F403
