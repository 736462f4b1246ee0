"""Video plugins (interface only for now)."""
