"""Structured output (`distilabel.steps.tasks.structured_outputs`): the schema a model's answer must follow."""
