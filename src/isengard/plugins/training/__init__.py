"""Training plugins."""
