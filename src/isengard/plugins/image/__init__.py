"""Image generation plugins."""
