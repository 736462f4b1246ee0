"""The training feature: submitting runs (config checked, dataset snapshotted), estimates and saved presets."""
