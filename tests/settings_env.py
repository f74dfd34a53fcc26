"""Every environment variable name chatops settings read, for tests that must clear them."""

import os

from chatops_app.settings import SETTINGS_MODELS


def settings_env_names() -> set[str]:
    names = set()
    for model in SETTINGS_MODELS:
        for name, field in model.model_fields.items():
            names.add(name.upper())
            alias = field.validation_alias
            if alias is not None:
                names.update(str(c).upper() for c in getattr(alias, "choices", [alias]))
    return names


def clear_settings_env(monkeypatch) -> None:
    """Unset every setting chatops reads, in every spelling (settings match names case-insensitively),
    so that only what a test sets reaches them."""
    names = settings_env_names()
    for key in list(os.environ):
        if key.upper() in names:
            monkeypatch.delenv(key, raising=False)
