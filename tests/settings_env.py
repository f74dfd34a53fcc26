"""Every environment variable name chatops settings read, for tests that must clear them."""

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
