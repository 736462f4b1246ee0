"""Response and request models of the API, by area."""
