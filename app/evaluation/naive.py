"""The naive LangChain pipeline every evaluation and benchmark compares against, defined once:
the tutorial's RecursiveCharacterTextSplitter(1000, 200), the same embedding model as ragkb, and
`Chroma.from_documents` in a fresh embedded Chroma; PyPDFLoader (TextLoader for text) for files."""

from __future__ import annotations

from pathlib import Path

from rag.settings import Settings


def split(docs: list) -> list:
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    return RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).split_documents(docs)


def load_file(path: Path) -> list:
    """PyPDFLoader's documents (one per page, metadata["page"] 0-based), or TextLoader's for text."""
    import warnings

    with warnings.catch_warnings():  # langchain-community announces its sunset on import
        warnings.simplefilter("ignore", DeprecationWarning)
        from langchain_community.document_loaders import PyPDFLoader, TextLoader

    if path.suffix.lower() == ".pdf":
        return PyPDFLoader(str(path)).load()
    return TextLoader(str(path), encoding="utf-8").load()


def chroma_store(chunks: list, settings: Settings, path: Path, name: str = "naive"):  # noqa: ANN201
    import chromadb
    from chromadb.config import Settings as ChromaSettings
    from langchain_chroma import Chroma

    from rag.embeddings import get_embeddings

    client = chromadb.PersistentClient(path=str(path), settings=ChromaSettings(anonymized_telemetry=False))
    return Chroma.from_documents(chunks, get_embeddings(settings), client=client, collection_name=name)
