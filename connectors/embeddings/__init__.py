"""Embedding providers (``CHATOPS_EMBEDDING_PROVIDER``): each turns text into the dense vectors the
index searches, behind ``base.Embedder``, found by name in ``registry.py``. The sparse (BM25) side is
the same local fastembed model for every provider (``sparse.py``).

Nothing here is imported by the web process: the providers load ONNX Runtime, fastembed or the
openai SDK where they are built (the composition root imports the registry late)."""
