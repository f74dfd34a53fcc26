"""The tools registry's own settings: the key people's tool credentials are sealed with."""

from __future__ import annotations

import base64
import binascii

from pydantic import SecretStr, field_validator

from chatops.settings import PluginSettings, env

TOKEN_KEY_VARIABLE = "CHATOPS_TOOL_TOKEN_KEY"


class ToolSettings(PluginSettings):
    # Fernet keys (``python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"``)
    # sealing the OAuth tokens people connect tools with (``auth: {oauth: per_user}``), in the database
    # and in Redis. Several, comma-separated, to rotate: the first seals, each opens. Without it a
    # per-person tool does not start.
    tool_token_key: SecretStr | None = env(TOKEN_KEY_VARIABLE)

    @field_validator("tool_token_key")
    @classmethod
    def _fernet_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        for key in value.get_secret_value().split(","):
            try:
                raw = base64.urlsafe_b64decode(key.strip().encode("ascii"))
            except (binascii.Error, UnicodeEncodeError, ValueError):
                raw = b""
            if len(raw) != 32:
                raise ValueError("must be Fernet keys (32 bytes, URL-safe base64), comma-separated")
        return value

    @property
    def token_keys(self) -> list[str]:
        """The keys, the sealing one first (empty without the setting)."""
        if self.tool_token_key is None:
            return []
        return [k.strip() for k in self.tool_token_key.get_secret_value().split(",") if k.strip()]
