"""Captions as a feature: automatic caption jobs and the caption linter."""
