"""The filesystem kind: a folder in ``tmp_path``, permissions in its ``.acl.yml``.

A file is its relative path, so a rename or a move is a deletion and a new file (read and
embedded again); ``.acl.yml`` is read again at every listing, so a permission edit shows at the
next changes sync, in place.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from connectors.sources.parsing import fallback_title
from connectors.sources.registry import SourceContext, open_sync_source
from tests.sources.conformance.harness import (FINDINGS, INSIDER, INTERRUPTION, PAGING, READER, THROTTLING,
                                               UNREADABLE, Adapter, Ref)

BASE_URL = "https://files.contoso.com/docs/"


class FilesystemAdapter(Adapter):
    kind = "filesystem"
    unsupported = {
        PAGING: "a folder is listed whole, in one page; there is no page size to force",
        THROTTLING: "a local folder: nothing throttles it",
        INTERRUPTION: "one scope listed whole in one page, with no cursor: a pass cut short lists the "
                      "folder again (lists_everything)",
        UNREADABLE: "permissions come from .acl.yml, read whole: a file no rule matches is hidden, and an "
                    ".acl.yml that cannot be read stops the source and keeps the permissions indexed "
                    "(tests/sources/test_framework.py)",
        FINDINGS: "nothing in .acl.yml grants nothing unnoticed: FilesystemSource.findings() is empty",
    }

    def __init__(self, request, tmp_path: Path):
        super().__init__()
        self.root = tmp_path / "docs"
        self.rules: list[dict] = []

    def build(self) -> None:
        (self.root / "restricted").mkdir(parents=True)
        self.rules = [{"match": "**", "users": [READER]}, {"match": "restricted/**", "users": [INSIDER]}]
        self._write_rules()

    def open(self, max_wait: float):
        spec = {"kind": "filesystem", "path": str(self.root), "base_url": BASE_URL}
        return open_sync_source("docs", spec, SourceContext())

    def _write_rules(self) -> None:
        (self.root / ".acl.yml").write_text(yaml.safe_dump(self.rules))

    def _ref(self, rel: str) -> Ref:
        """A file without a title of its own: titled after its name, as the parser does."""
        return Ref(rel, fallback_title(rel), BASE_URL + rel, handle=self.root / rel)

    def create(self, name: str, text: str, where: str = "team") -> Ref:
        ref = self._ref(f"{name}.md")
        ref.handle.write_text(text + "\n")
        return ref

    def edit(self, ref: Ref, text: str) -> None:
        ref.handle.write_text(text + "\n")

    def rename(self, ref: Ref, name: str) -> Ref:
        new = self._ref(str(Path(ref.doc_id).with_name(f"{name}.md")))
        ref.handle.rename(new.handle)
        return new

    def move(self, ref: Ref) -> Ref:
        new = self._ref(f"restricted/{Path(ref.doc_id).name}")
        ref.handle.rename(new.handle)
        return new

    def delete(self, ref: Ref) -> None:
        ref.handle.unlink()

    def share_only_with_insider(self, ref: Ref) -> None:
        self.rules.append({"match": ref.doc_id, "users": [INSIDER]})
        self._write_rules()
