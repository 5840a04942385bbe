from distilflow.tasks import EvolInstruct

__all__ = ["EvolInstruct"]
