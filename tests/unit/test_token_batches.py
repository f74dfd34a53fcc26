"""Embedding batches bounded by texts and by padded word pieces (connectors.embeddings.batching),
the setting behind the bound, and releasing the model (Container.release_embedder)."""

from __future__ import annotations

from connectors.embeddings.batching import estimated_tokens, token_batches
from connectors.index.models import MAX_TOKENS


def text(tokens: int) -> str:
    """A text the estimate puts at exactly ``tokens`` word pieces (below the cap)."""
    return "x" * ((tokens - 2) * 4)


def test_estimate_is_capped_where_the_tokenizer_truncates():
    assert estimated_tokens("") == 2                       # [CLS] and [SEP]
    assert estimated_tokens("abcd" * 10) == 12
    assert estimated_tokens("x" * 100_000) == MAX_TOKENS


def test_short_texts_fill_batches_up_to_the_count():
    texts = [text(10)] * 70
    assert [len(b) for b in token_batches(texts, max_texts=32, max_tokens=2048)] == [32, 32, 6]


def test_long_texts_take_smaller_batches_by_padded_length():
    # 64-piece texts: 2048 / 64 = 32 a batch; 256-piece texts: 8 a batch
    texts = [text(64)] * 40 + ["y" * 5000] * 20
    sizes = [len(b) for b in token_batches(texts, max_texts=32, max_tokens=2048)]
    assert sizes == [32, 8, 8, 8, 4]
    assert sum(sizes) == 60


def test_padding_counts_the_longest_text_of_the_batch():
    # 10 + 10 + 100: padded to 100 pieces each, 3 x 100 > 250, so the long one starts a batch
    texts = [text(10), text(10), text(100), text(100)]
    assert [len(b) for b in token_batches(texts, max_texts=32, max_tokens=250)] == [2, 2]


def test_a_text_over_the_budget_still_gets_a_batch_of_its_own():
    texts = ["y" * 5000, "y" * 5000]
    assert [len(b) for b in token_batches(texts, max_texts=32, max_tokens=100)] == [1, 1]


def test_order_and_content_are_kept():
    texts = [text(n) for n in range(3, 200, 7)]
    flat = [t for b in token_batches(texts, max_texts=5, max_tokens=600) for t in b]
    assert flat == texts


def test_release_embedder_drops_the_containers_only_reference(tmp_path):
    import weakref

    from chatops_app.container import Container
    from chatops.settings import Settings

    class Model:  # stands in for the loaded Embedder; only its lifetime matters here
        pass

    container = Container(Settings.load(QDRANT_PATH=str(tmp_path / "index")))
    container.release_embedder()                     # nothing loaded yet: nothing to do
    model = Model()
    container._built["embedder"] = model            # as the composition root keeps a built service
    alive = weakref.ref(model)
    del model
    container.release_embedder()
    assert alive() is None                           # freed, so its memory can go back
    assert "embedder" not in container._built        # the next use loads the model again


def test_batch_tokens_setting_reaches_settings_and_rejects_zero():
    import pytest

    from chatops.settings import ConfigError
    from chatops_app.settings import load_settings
    from connectors.index.embedding_settings import EmbeddingSettings

    assert load_settings(CHATOPS_EMBEDDING_BATCH_TOKENS="512").of(EmbeddingSettings).embedding_batch_tokens == 512
    with pytest.raises(ConfigError, match="CHATOPS_EMBEDDING_BATCH_TOKENS"):
        load_settings(CHATOPS_EMBEDDING_BATCH_TOKENS="0")
