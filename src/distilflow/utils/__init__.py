"""Helpers distilabel's docs import from `distilabel.utils` (`requirements`)."""
