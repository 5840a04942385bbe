from distilflow.tasks.steps.formatting.conversation import ConversationTemplate

__all__ = ["ConversationTemplate"]
