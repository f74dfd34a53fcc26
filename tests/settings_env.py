"""Every environment variable name chatops settings read, for tests that must clear them."""

from chatops.settings import Settings


def settings_env_names() -> set[str]:
    names = set()
    for name, field in Settings.model_fields.items():
        names.add(name.upper())
        alias = field.validation_alias
        if alias is not None:
            names.update(str(c).upper() for c in getattr(alias, "choices", [alias]))
    return names
