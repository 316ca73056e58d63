"""The HTTP layer: thin controllers over the service modules."""
