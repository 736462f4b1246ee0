"""Training, image and video engines, discovered through entry points (see registry.py)."""
