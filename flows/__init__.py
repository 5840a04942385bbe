"""Runnable Prefect flows: `python flows/<name>.py`, and deployment entrypoints in prefect.yaml."""
