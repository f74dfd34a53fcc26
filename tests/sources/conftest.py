"""A SharePoint tenant on loopback (standins/fake_sharepoint.py behind fake Entra), a
source synced from it into a real embedded index and a SQLite store."""

from __future__ import annotations

import contextlib
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest
import trustme

from chatops.access import Audience, Principal
from chatops.store import Store
from chatops.store.sources import SourceStates
from connectors.microsoft.graph import GraphClient
from connectors.index.base import Query
from connectors.index.edge_index import EdgeIndex
from connectors.sources.sharepoint.config import SharePointConfig
from connectors.sources.sharepoint.connector import SharePointSource
from tests.ingest_helpers import DIM, HashEmbedder
from standins.certificates import make_certificate
from standins.fake_entra import FakeEntra
from standins.fake_sharepoint import FakeSharePoint
from usecases.sync import Sync


CERT = make_certificate()


@contextlib.contextmanager
def tls_tenant(folder: Path) -> Iterator[tuple[FakeEntra, FakeSharePoint, Path]]:
    """Entra, Graph and SharePoint on one loopback server over TLS (a throwaway CA, whose bundle
    is written in ``folder`` for REQUESTS_CA_BUNDLE), for processes configured by environment."""
    ca = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    bundle = folder / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    entra = FakeEntra(users={}, certificate=CERT[1], direct=True)
    entra.tls = context
    sp = FakeSharePoint(page_size=3)
    entra.extend(sp)
    with entra:
        yield entra, sp, bundle


@dataclass
class Tenant:
    entra: FakeEntra
    sp: FakeSharePoint
    store: Store
    states: SourceStates
    index: EdgeIndex
    embedder: HashEmbedder
    sleeps: list[float] = field(default_factory=list)

    def source(self, *, name: str = "eng-docs", certificate: bool = True, max_wait: float = 120.0,
               **config) -> SharePointSource:
        config.setdefault("sites", ["https://contoso.sharepoint.com/sites/engineering"])
        credential = {"private_key": CERT[0], "public_certificate": CERT[1]} if certificate else "secret-1"
        graph = GraphClient("tenant-1", "client-1", credential, http_client=self.entra.session(), max_attempts=1)
        return SharePointSource(name, SharePointConfig(**config), graph, max_wait=max_wait,
                                sleep=self.sleeps.append)

    def sync(self, source: SharePointSource, mode: str = "changes", **kw):
        return Sync(source, self.states, self.index, self.embedder, kind="sharepoint", **kw).run(mode)

    def visible_to(self, who: Principal | Audience, source_id: str = "sharepoint:eng-docs") -> set[str]:
        """Titles of the documents of the source this person (or audience) may see."""
        audience = who if isinstance(who, Audience) else Audience.of(who)
        hits = self.index.search(Query(dense=[0.5] * DIM, sparse=None), audience, limit=1000, candidates=1000,
                                 mode="dense")
        return {h.chunk.title for h in hits if h.chunk.source == source_id}

    def person(self, email: str, entra_groups=(), source: str = "eng-docs") -> Principal:
        """A person as the bot resolves them: Entra groups plus the source groups they are in."""
        groups = set(entra_groups) | self.states.groups_of(email, entra_groups)
        return Principal.of(email, groups)


@pytest.fixture
def tenant(tmp_path):
    entra = FakeEntra(users={}, certificate=CERT[1])
    sp = FakeSharePoint(page_size=3)
    entra.extend(sp)
    with entra:
        store = Store.for_url(f"sqlite:///{tmp_path / 'chatops.db'}")
        index = EdgeIndex(path=tmp_path / "index", dim=DIM, exact=True)
        try:
            yield Tenant(entra, sp, store, SourceStates(store), index, HashEmbedder())
        finally:
            index.close()
            store.close()


@pytest.fixture
def loopback_tls(tmp_path, monkeypatch):
    """A server-side TLS context for 127.0.0.1 from a throwaway CA that requests trusts (through
    REQUESTS_CA_BUNDLE, which requests prefers to ``Session.verify``)."""
    import ssl

    import trustme

    ca = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    return context
