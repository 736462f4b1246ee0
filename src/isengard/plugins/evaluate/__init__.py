"""Evaluator plugins: embed images (and texts) to score identity and prompt adherence."""
