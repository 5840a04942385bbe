"""EvolInstruct (`distilabel.steps.tasks.evol_instruct`)."""

from distilflow.steps.tasks.evol_instruct.base import EvolInstruct

__all__ = ["EvolInstruct"]
