"""Read-only tools the model may call for live data: one module per kind, found in ``registry.py``."""
