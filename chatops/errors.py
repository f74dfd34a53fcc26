"""Errors every layer may raise and the application layer turns into one line for people."""


class ConfigError(Exception):
    """The configuration is wrong; the message says what and how to fix it."""
