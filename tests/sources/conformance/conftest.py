"""``h``: a harness for each registered source kind (``connectors/sources/registry.py SOURCES``),
with its adapter. A kind that cannot be synced is skipped, saying so; a kind with no adapter
fails ``test_every_registered_kind_has_an_adapter``."""

from __future__ import annotations

import pytest

from chatops.store import Store
from chatops.store.sources import SourceStates
from connectors.index.edge_index import EdgeIndex
from connectors.sources.registry import SOURCES
from tests.ingest_helpers import DIM
from tests.sources.conformance.confluence import ConfluenceAdapter
from tests.sources.conformance.filesystem import FilesystemAdapter
from tests.sources.conformance.harness import Harness
from tests.sources.conformance.jira import JiraAdapter
from tests.sources.conformance.sharepoint import SharePointAdapter

ADAPTERS = {a.kind: a for a in (FilesystemAdapter, SharePointAdapter, ConfluenceAdapter, JiraAdapter)}


@pytest.fixture(params=sorted(SOURCES))
def h(request, tmp_path):
    kind = request.param
    if not SOURCES[kind].syncs:
        pytest.skip(f"{kind} sources cannot be synced (SourceKind.syncs is False): they are read whole, "
                    f"through open_source")
    if kind not in ADAPTERS:
        pytest.fail(f"no conformance adapter for the source kind {kind!r} (tests/sources/conformance/)")
    adapter = ADAPTERS[kind](request, tmp_path)
    store = Store.for_url(f"sqlite:///{tmp_path / 'conformance.db'}")
    index = EdgeIndex(path=tmp_path / "conformance-index", dim=DIM, exact=True)
    harness = Harness(adapter, SourceStates(store), index)
    try:
        yield harness
    finally:
        harness.close()
        index.close()
        store.close()
