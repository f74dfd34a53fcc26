"""The work the workers do, as plain functions over connectors."""
