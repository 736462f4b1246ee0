"""Base models: where they are found, and the tiny FLUX-architecture model of fast-test mode."""
