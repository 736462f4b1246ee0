"""Isengard: a self-hosted studio for character LoRAs."""

__version__ = "0.1.0"
