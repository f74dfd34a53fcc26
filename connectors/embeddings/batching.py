"""What the providers that run ONNX models in this process share: batches bounded by padded word
pieces, and the process's memory kept in check (glibc's malloc arenas, free pages returned)."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from typing import Iterator, Sequence

from connectors.index.models import MAX_TOKENS

_M_ARENA_MAX = -8  # glibc mallopt() parameter


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas for this process (as MALLOC_ARENA_MAX would); False where
    there is no glibc.

    Every ONNX Runtime inference thread otherwise frees into a malloc arena of its own, and the
    process's memory only grows: over three 1,024-chunk gatherings, with ONNX Runtime's own
    arena off, RSS went 327 -> 419 -> 656 MB uncapped and 355 -> 393 -> 337 MB with two arenas;
    embedding throughput was the same either way (its arena stays on: off cost ~20 %).
    """
    libc = _libc()
    return bool(libc and libc.mallopt(_M_ARENA_MAX, arenas))


def release_free_memory() -> None:
    """Collect garbage and return glibc's free heap pages to the system (no-op without glibc).
    Measured: an embedder that had reached 1,048 MB RSS, deleted: 219 MB, then trimmed: 113 MB."""
    gc.collect()
    libc = _libc()
    if libc:
        libc.malloc_trim(0)


def _libc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 - both are glibc's
        return libc
    except (OSError, AttributeError):
        return None


def estimated_tokens(text: str, cap: int = MAX_TOKENS) -> int:
    """Word pieces ``text`` becomes, estimated from its length (English averages over four
    characters a piece, so this errs high) and capped where the tokenizer truncates (``cap``)."""
    return min(len(text) // 4 + 2, cap)


def token_batches(ordered: Sequence[str], max_texts: int, max_tokens: int,
                  cap: int = MAX_TOKENS) -> Iterator[list[str]]:
    """Consecutive batches of ``ordered`` (sorted by length): at most ``max_texts`` texts, and
    at most ``max_tokens`` word pieces once padded to the batch's longest text (one text at least).

    The model's working memory grows with batch size x padded length (attention with the
    square of it), and ONNX Runtime's arena keeps its high-water mark for the life of the
    process: with 32 texts a batch, ingesting the 100k-document benchmark corpus reached
    1.7 GB for the model alone. Budgeting padded tokens lets short texts keep large batches
    and long ones take small batches. ``cap``: where the model's tokenizer truncates.
    """
    batch: list[str] = []
    longest = 0
    for text in ordered:
        n = estimated_tokens(text, cap)
        if batch and (len(batch) == max_texts or max(longest, n) * (len(batch) + 1) > max_tokens):
            yield batch
            batch, longest = [], 0
        batch.append(text)
        longest = max(longest, n)
    if batch:
        yield batch


def in_order(texts: Sequence[str], embed_batch, max_texts: int, max_tokens: int, cap: int = MAX_TOKENS) -> list:
    """``embed_batch(batch)`` over ``texts`` sorted by length (little padding within a batch) in
    :func:`token_batches`; the vectors in the order given."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    vectors: list = []
    for batch in token_batches([texts[i] for i in order], max_texts, max_tokens, cap):
        vectors.extend(embed_batch(batch))
    out: list = [None] * len(texts)
    for pos, i in enumerate(order):
        out[i] = vectors[pos]
    return out
