"""The LoRA library: listing and editing LoRAs, and importing LoRA files made elsewhere (checked, converted)."""
