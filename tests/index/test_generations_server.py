"""Generations on a Qdrant server: collections named by their embedder, the active one behind the alias
``<collection>__active``, switched in one request. The alias rules run on qdrant-client's local mode
(same client API); the whole rebuild on a real server when QDRANT_URL names one (skipped otherwise)."""

from __future__ import annotations

import os
import uuid

import pytest
from qdrant_client import QdrantClient, models

from chatops.access import Acl
from chatops.errors import ConfigError
from connectors.index.base import Chunk
from connectors.index.generations import GenerationState, ServerGenerations, generation_name


def _collection(client, name, dim=4, meta=None):
    client.create_collection(name, vectors_config={"dense": models.VectorParams(size=dim,
                                                                                distance=models.Distance.COSINE)},
                             metadata=meta)


def test_the_alias_names_the_active_collection_and_moves_in_one_step(tmp_path):
    client = QdrantClient(":memory:")
    _collection(client, "chatops", meta={"chatops_dim": 4, "chatops_embedder": "m", "chatops_provider": "local"})
    gens = ServerGenerations(client, "chatops", tmp_path)
    assert gens.active() == "chatops" and gens.names() == ["chatops"]     # the layout before generations
    new = generation_name("chatops", "openai", "text-embedding-3-small", 4)
    _collection(client, new)
    _collection(client, "other")                                           # not ours
    assert gens.names() == ["chatops", new]
    gens.switch(new)
    assert gens.active() == new and [a.alias_name for a in client.get_aliases().aliases] == ["chatops__active"]
    with pytest.raises(ConfigError, match="is the active generation"):
        gens.remove(new)
    gens.switch("chatops")
    assert gens.active() == "chatops"
    gens.save_state(GenerationState(new, "openai", "text-embedding-3-small", 4, state="checked"))
    assert gens.state(new).state == "checked"
    gens.remove(new)
    assert gens.names() == ["chatops"] and gens.state(new) is None
    with pytest.raises(ConfigError, match="no collection"):
        gens.switch("chatops__missing")


@pytest.mark.skipif(not os.environ.get("QDRANT_URL"), reason="no Qdrant server (QDRANT_URL)")
def test_a_rebuild_on_a_server_switches_the_alias(tmp_path):
    from connectors.index.qdrant_index import QdrantIndex
    from connectors.index.base import SparseVec
    from usecases.rebuild import rebuild

    class Fixed:   # a deterministic embedder: vectors from the text's hash, no model
        def __init__(self, dim):
            self.dim = dim

        def embed_documents(self, texts):
            return [[float((hash(t) >> i) % 7 + 1) for i in range(self.dim)] for t in texts], \
                [SparseVec((), ()) for _ in texts]

    url = os.environ["QDRANT_URL"]
    base = f"t{uuid.uuid4().hex[:8]}"
    client = QdrantClient(url=url)
    gens = ServerGenerations(client, base, tmp_path)
    first = QdrantIndex(collection=base, dim=4, url=url, embedder="a", provider="local")
    first.ensure_collection()
    cs = [Chunk(id=str(uuid.uuid4()), source="fs:/x", doc_id=f"d{i}.md", title="t", heading="", text=f"text {i}",
                position=0, acl=Acl.of(groups=["sre"]), doc_hash="h") for i in range(20)]
    first.upsert(cs, *Fixed(4).embed_documents([c.embedding_text() for c in cs]))
    name = generation_name(base, "openai", "b", 8)
    target = QdrantIndex(collection=name, dim=8, url=url, embedder="b", provider="openai")
    target.ensure_collection()
    try:
        report = rebuild(first, target, Fixed(8), gens, GenerationState(name, "openai", "b", 8))
        assert report.switched and report.points == 20 and gens.active() == name
        assert QdrantIndex(collection=name, dim=8, url=url).count() == 20
    finally:
        for c in (base, name):
            client.delete_collection(c)
