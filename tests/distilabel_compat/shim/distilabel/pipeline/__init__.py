from distilabel.pipeline.local import Pipeline  # noqa: F401
