"""Captioning plugins: vision-language models that write dataset captions."""
