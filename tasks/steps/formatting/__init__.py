"""Formatting steps: rows in the layouts fine-tuning frameworks read (SFT, DPO, chat conversations)."""

from distilflow.tasks.steps.formatting.conversation import ConversationTemplate
from distilflow.tasks.steps.formatting.dpo import FormatChatGenerationDPO, FormatTextGenerationDPO
from distilflow.tasks.steps.formatting.sft import FormatChatGenerationSFT, FormatTextGenerationSFT

__all__ = [
    "ConversationTemplate", "FormatChatGenerationDPO", "FormatChatGenerationSFT", "FormatTextGenerationDPO",
    "FormatTextGenerationSFT",
]
