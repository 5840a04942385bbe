"""Behaviour steps and models share: run-time parameters (`distilflow.mixins.runtime_parameters`)."""
