"""The generation feature: submitting image and comparison-grid jobs, and the gallery of what they made."""
