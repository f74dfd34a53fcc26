"""Errors every layer may raise and the application layer turns into one line for people."""


class ConfigError(Exception):
    """The configuration is wrong; the message says what and how to fix it."""


class TransientError(Exception):
    """Something outside failed in a way that trying again later may fix (Slack rate-limited us,
    a service answered 5xx). Task runners retry these with back-off."""

    service = "a service"        # who kept failing, as the person who asked is told
