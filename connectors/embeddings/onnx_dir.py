"""``onnx_dir``: a model directory the operator supplies (``model.onnx`` and ``tokenizer.json``,
e.g. bge-small or multilingual-e5 exported with Optimum), read from disk only: nothing is
downloaded. Its pooling (``mean`` or ``cls``) and normalisation are declared in the settings
(``CHATOPS_EMBEDDING_POOLING``, ``CHATOPS_EMBEDDING_NORMALIZE``), never guessed; so are the
prefixes some models were trained with (e5: ``query: `` and ``passage: ``).

A model whose output is already one vector per text (``sentence_embedding``, 2-D) is used as it
is, then normalised if declared."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from chatops.errors import ConfigError
from chatops.settings import Settings
from connectors.embeddings.batching import in_order, limit_malloc_arenas
from connectors.embeddings.settings import EmbeddingSettings, OnnxDirSettings
from connectors.embeddings.sparse import Bm25, WithBm25

FILES = ("model.onnx", "tokenizer.json")


class OnnxDirEmbedder(WithBm25):
    provider = "onnx_dir"

    @classmethod
    def from_settings(cls, settings: Settings, http=None) -> "OnnxDirEmbedder":
        s, d = settings.of(EmbeddingSettings), settings.of(OnnxDirSettings)
        folder, pooling = cls.checked(settings)
        return cls(folder, pooling=pooling, normalize=d.embedding_normalize, name=s.embedding_model,
                   max_tokens=d.embedding_max_tokens, query_prefix=d.embedding_query_prefix or "",
                   document_prefix=d.embedding_document_prefix or "", batch_size=s.embedding_batch_size,
                   batch_tokens=s.embedding_batch_tokens)

    @staticmethod
    def checked(settings: Settings) -> tuple[Path, str]:
        """The directory and the pooling, or a one-line ConfigError saying what to set."""
        d = settings.of(OnnxDirSettings)
        if d.embedding_dir is None:
            raise ConfigError("CHATOPS_EMBEDDING_PROVIDER=onnx_dir needs CHATOPS_EMBEDDING_DIR: a directory "
                              "holding model.onnx and tokenizer.json")
        missing = [f for f in FILES if not (d.embedding_dir / f).is_file()]
        if missing:
            raise ConfigError(f"CHATOPS_EMBEDDING_DIR: {d.embedding_dir} has no {' and no '.join(missing)} "
                              "(export the model with Optimum: optimum-cli export onnx --model NAME DIR)")
        if d.embedding_pooling is None:
            raise ConfigError("CHATOPS_EMBEDDING_PROVIDER=onnx_dir needs CHATOPS_EMBEDDING_POOLING: mean or cls, "
                              "as the model's card says (sentence-transformers and e5: mean; bge: cls)")
        return d.embedding_dir, d.embedding_pooling

    @staticmethod
    def declared(settings: Settings) -> tuple[str, int | None]:
        folder, _ = OnnxDirEmbedder.checked(settings)
        return settings.of(EmbeddingSettings).embedding_model or folder.name, None

    def __init__(self, folder: Path, *, pooling: str, normalize: bool = True, name: str | None = None,
                 max_tokens: int = 512, query_prefix: str = "", document_prefix: str = "",
                 batch_size: int = 32, batch_tokens: int = 2048, threads: int | None = None):
        # ONNX Runtime and the tokenizer load here, with the model: never in the web process.
        import onnxruntime as ort  # type: ignore[import-untyped]
        from tokenizers import Tokenizer

        folder = Path(folder)
        self.name = name or folder.name
        self.pooling, self.normalize = pooling, normalize
        self.max_tokens = max_tokens
        self.query_prefix, self.document_prefix = query_prefix, document_prefix
        self.batch_size, self.batch_tokens = batch_size, batch_tokens
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_length=max_tokens)
        pad = self._tokenizer.padding or {}
        pad_token = pad.get("pad_token") or next(
            (t for t in ("[PAD]", "<pad>") if self._tokenizer.token_to_id(t) is not None), "[PAD]")
        self._tokenizer.enable_padding(pad_id=self._tokenizer.token_to_id(pad_token) or 0, pad_token=pad_token)
        limit_malloc_arenas()
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self._session = ort.InferenceSession(str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}
        if pooling not in ("mean", "cls"):
            raise ConfigError(f"CHATOPS_EMBEDDING_POOLING: {pooling!r} is not mean or cls")
        self.sparse = Bm25(batch_size)
        self.dim = len(self._run(["dimension probe"])[0])

    def _run(self, texts: Sequence[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(list(texts))
        ids = np.asarray([e.ids for e in encodings], dtype=np.int64)
        mask = np.asarray([e.attention_mask for e in encodings], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.asarray([e.type_ids for e in encodings], dtype=np.int64)
        out = np.asarray(self._session.run(None, {k: v for k, v in feed.items() if k in self._inputs})[0],
                         dtype=np.float32)
        if out.ndim == 3:     # token vectors: pool them as declared
            if self.pooling == "cls":
                out = out[:, 0]
            else:
                weights = mask[..., None].astype(np.float32)
                out = (out * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        if self.normalize:
            out = out / np.clip(np.linalg.norm(out, axis=1, keepdims=True), 1e-12, None)
        return out

    def embed_dense(self, texts: Sequence[str]) -> list:
        return in_order([self.document_prefix + t for t in texts], lambda batch: list(self._run(batch)),
                        self.batch_size, self.batch_tokens, cap=self.max_tokens)

    def dense_query(self, text: str) -> list[float]:
        return [float(x) for x in self._run([self.query_prefix + text])[0]]
