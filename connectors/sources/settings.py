"""The sources registry's settings: what a connector may spend on one file, and on a throttled
window. Every source kind reads them (``ParseLimits.of``, the pacing of its HTTP client)."""

from __future__ import annotations

from pydantic import AliasChoices, Field

from chatops.settings import PluginSettings


class SourceSettings(PluginSettings):
    # Throttled by a source (429/503): wait what Retry-After says, for the whole source, up to this
    # many seconds in one window; past it the window stops and the next one resumes.
    source_max_throttle_wait: float = Field(default=120, ge=0,
                                            validation_alias=AliasChoices("CHATOPS_SOURCE_MAX_THROTTLE_WAIT"))
    # The text taken from one document (characters, headings included); the rest is left out.
    max_document_chars: int = Field(default=2_000_000, ge=1000,
                                    validation_alias=AliasChoices("CHATOPS_MAX_DOCUMENT_CHARS"))
    # Each file is parsed in a child process with at most this much CPU time (seconds) and memory
    # (MB, the file's bytes included); past either the file is skipped, never the worker.
    parse_timeout: float = Field(default=60, gt=0, validation_alias=AliasChoices("CHATOPS_PARSE_TIMEOUT"))
    parse_memory_mb: int = Field(default=1024, ge=64, validation_alias=AliasChoices("CHATOPS_PARSE_MEMORY_MB"))
