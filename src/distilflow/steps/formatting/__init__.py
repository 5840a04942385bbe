"""Formatting steps: rows in the layouts fine-tuning frameworks read (SFT, DPO, chat conversations)."""

from distilflow.steps.formatting.conversation import ConversationTemplate
from distilflow.steps.formatting.dpo import FormatChatGenerationDPO, FormatTextGenerationDPO
from distilflow.steps.formatting.sft import FormatChatGenerationSFT, FormatTextGenerationSFT

__all__ = [
    "ConversationTemplate", "FormatChatGenerationDPO", "FormatChatGenerationSFT", "FormatTextGenerationDPO",
    "FormatTextGenerationSFT",
]
