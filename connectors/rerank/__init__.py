"""Second-stage rerankers: reorder the candidates the audience may see (``CHATOPS_RERANK``)."""
