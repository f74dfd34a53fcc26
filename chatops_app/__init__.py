"""The application layer: the CLI, the composition root, the demo. Nothing imports it."""
