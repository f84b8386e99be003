"""One settings object: RAGKB_ environment variables, an optional .env file, validated values."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from rag.settings import DEFAULT_EMBEDDING_MODEL, Settings


def test_defaults_work_offline_and_env_overrides(monkeypatch, tmp_path):
    for var in ("RAGKB_DATA_DIR", "RAGKB_CHUNK_SIZE", "RAGKB_LLM_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    s = Settings(_env_file=None)
    assert s.data_dir == Path("./data") and s.embedding_model == DEFAULT_EMBEDDING_MODEL
    assert s.llm_base_url is None  # embedded model by default
    monkeypatch.setenv("RAGKB_DATA_DIR", str(tmp_path / "kb"))
    monkeypatch.setenv("RAGKB_CHUNK_SIZE", "900")
    monkeypatch.setenv("RAGKB_LLM_API_KEY", "sk-secret")
    s = Settings(_env_file=None)
    assert s.data_dir == tmp_path / "kb" and s.chunk_size == 900
    assert s.registry_url == f"sqlite:///{(tmp_path / 'kb' / 'registry.db').resolve()}"
    assert "sk-secret" not in repr(s)  # the key is never printed


def test_dotenv_file_is_read(tmp_path, monkeypatch):
    monkeypatch.delenv("RAGKB_RETRIEVAL_K", raising=False)
    env = tmp_path / ".env"
    env.write_text("RAGKB_RETRIEVAL_K=9\nRAGKB_EMBEDDING_DEVICE=cpu\n", encoding="utf-8")
    s = Settings(_env_file=env)
    assert s.retrieval_k == 9 and s.resolved_device() == "cpu"


def test_invalid_values_are_refused_with_the_reason():
    with pytest.raises(ValidationError, match="chunk_overlap .* must be smaller than chunk_size"):
        Settings(chunk_size=100, chunk_overlap=100, _env_file=None)
    with pytest.raises(ValidationError):
        Settings(retrieval_k=0, _env_file=None)
