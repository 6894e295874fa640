"""Preference approximation: prompts, output validation and the Ray Data pipeline."""
