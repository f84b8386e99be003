"""Ingest: per-file results, dedup by content, replace by name, delete, bad input, failure mid-batch."""

from __future__ import annotations

import shutil


from docs import EN_GUIDE_MD, encrypted_pdf, en_pdf, garbled_pdf, scanned_pdf, write_corpus
from ingest.pipeline import FAILED, INGESTED, REPLACED, SKIPPED, ingest_paths
from rag.retrieval import search
from rag.settings import Settings
from rag.store import KnowledgeBaseStore


def _by_name(summary):
    return {r.name: r for r in summary.results}


def test_folder_ingest_creates_kb_and_reports_each_file(store, tmp_path):
    folder = tmp_path / "kbdocs"
    write_corpus(folder)
    (folder / "image.png").write_bytes(b"\x89PNG....")
    (folder / ".hidden.md").write_text("# secret", encoding="utf-8")
    (folder / "sub").mkdir()
    (folder / "sub" / "extra.markdown").write_text("# Extra\nSome extra notes about kayaks.", encoding="utf-8")
    events = []
    summary = ingest_paths(store, "混合 KB", [folder], progress=events.append)
    assert summary.created_kb
    res = _by_name(summary)
    assert res["kbdocs/image.png"].status == SKIPPED and "unsupported file type '.png'" in res["kbdocs/image.png"].reason
    assert not any(".hidden" in n for n in res)
    for name in ["kbdocs/员工手册.pdf", "kbdocs/telescope.pdf", "kbdocs/deploy.md", "kbdocs/安装指南.md",
                 "kbdocs/量子_gbk.txt", "kbdocs/notes_utf16.txt", "kbdocs/sub/extra.markdown"]:
        assert res[name].status == INGESTED, (name, res[name].reason)
        assert res[name].chunks > 0
    assert res["kbdocs/员工手册.pdf"].pages == 3
    assert not summary.failed
    # progress: every file started and finished, chunk progress reached the total
    assert {e.name for e in events if e.stage == "file"} >= {"kbdocs/deploy.md", "kbdocs/员工手册.pdf"}
    chunk_events = [e for e in events if e.stage == "chunks" and e.name == "kbdocs/员工手册.pdf"]
    assert chunk_events[-1].done == chunk_events[-1].total > 0
    assert store.verify("混合 KB")["consistent"]

    docs = store.documents("混合 KB")
    assert len(docs) == 7 and all(d.status == "ready" and len(d.sha256) == 64 for d in docs)


def test_reingest_identical_content_is_skipped_even_under_another_name(store, tmp_path):
    (tmp_path / "a.md").write_text(EN_GUIDE_MD, encoding="utf-8")
    first = ingest_paths(store, "kb", [tmp_path / "a.md"])
    chunks = store.get("kb").chunks
    again = ingest_paths(store, "kb", [tmp_path / "a.md"])
    assert again.results[0].status == SKIPPED and "unchanged" in again.results[0].reason
    shutil.copy(tmp_path / "a.md", tmp_path / "copy.md")
    copy = ingest_paths(store, "kb", [tmp_path / "copy.md"])
    assert copy.results[0].status == SKIPPED and "already in the knowledge base as 'a.md'" in copy.results[0].reason
    kb = store.get("kb")
    assert kb.documents == 1 and kb.chunks == chunks == first.results[0].chunks


def test_changed_file_replaces_old_chunks(store, tmp_path):
    path = tmp_path / "telescope.pdf"
    en_pdf(path, extra="The old interferometer was retired in 2019.")
    ingest_paths(store, "kb", [path])
    old_ids = store.registry.ready_doc_ids(store.get_row("kb").id)
    assert "retired in 2019" in search(store, "kb", "When was the old interferometer retired?")[0].text

    en_pdf(path, extra="A new adaptive optics unit was installed in 2025.")
    res = ingest_paths(store, "kb", [path]).results[0]
    assert res.status == REPLACED
    kb = store.get_row("kb")
    assert store.get("kb").documents == 1
    assert store.registry.ready_doc_ids(kb.id).isdisjoint(old_ids)
    texts = " ".join(h.text for h in search(store, "kb", "interferometer retired 2019 adaptive optics", k=10))
    assert "adaptive optics" in texts and "retired in 2019" not in texts
    assert store.verify("kb")["consistent"]


def test_delete_document_removes_every_chunk(store, tmp_path):
    folder = tmp_path / "d"
    write_corpus(folder)
    ingest_paths(store, "kb", [folder])
    kb = store.get_row("kb")
    doc = store.find_document(kb, "d/员工手册.pdf")
    store.delete_document("kb", "员工手册.pdf")
    assert store.collection(kb).get(where={"doc_id": doc.id})["ids"] == []
    assert store.registry.chunk_ids([doc.id]) == set()
    assert all(h.filename != "d/员工手册.pdf" for h in search(store, "kb", "报销 发票 付款", k=20))
    assert store.verify("kb")["consistent"]
    assert store.get("kb").documents == 5


def test_every_bad_input_gets_a_named_reason_and_the_batch_goes_on(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", max_file_mb=0.05, _env_file=None)
    store = KnowledgeBaseStore(settings)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.txt").write_bytes(b"")
    (bad / "corrupt.pdf").write_bytes(b"%PDF-1.5\n%broken")
    encrypted_pdf(bad / "encrypted.pdf")
    scanned_pdf(bad / "scanned.pdf")
    garbled_pdf(bad / "garbled.pdf")
    (bad / "binary.txt").write_bytes(bytes(range(256)) * 20)
    (bad / "huge.txt").write_text("big file " * 10_000, encoding="utf-8")
    (bad / "good.md").write_text(EN_GUIDE_MD, encoding="utf-8")
    (bad / "dangling.md").symlink_to(tmp_path / "nowhere.md")
    summary = ingest_paths(store, "kb", [bad, tmp_path / "missing.pdf"])
    res = _by_name(summary)
    expected = {
        "bad/empty.txt": "empty file",
        "bad/corrupt.pdf": "not a readable PDF",
        "bad/encrypted.pdf": "encrypted PDF",
        "bad/scanned.pdf": "no text layer",
        "bad/garbled.pdf": "garbled text layer",
        "bad/binary.txt": "binary data",
        "bad/huge.txt": "over the 0.05 MB limit",
        "bad/dangling.md": "cannot read",
        "missing.pdf": "no such file",
    }
    for name, reason in expected.items():
        assert res[name].status == FAILED, name
        assert reason in res[name].reason, (name, res[name].reason)
    assert res["bad/good.md"].status == INGESTED
    assert len(summary.failed) == len(expected) and len(summary.ingested) == 1
    # failures are listed with their reason; nothing of them is searchable
    listed = {d.filename: d for d in store.documents("kb")}
    assert listed["bad/encrypted.pdf"].status == "failed" and "password" in listed["bad/encrypted.pdf"].error
    assert store.get("kb").documents == 1
    assert store.verify("kb")["consistent"]
    store.close()


def test_failure_mid_batch_keeps_previous_version_and_leaves_no_orphans(store, tmp_path, monkeypatch):
    folder = tmp_path / "m"
    write_corpus(folder)
    ingest_paths(store, "kb", [folder])
    before = store.verify("kb")
    kb = store.get_row("kb")
    old_doc = store.find_document(kb, "m/deploy.md")

    # change two files; the embedder dies while the second one is being written
    (folder / "deploy.md").write_text(EN_GUIDE_MD.replace("8 GB", "16 GB") + "\n" + "More text about servers. " * 1500, encoding="utf-8")
    (folder / "安装指南.md").write_text("# 安装\n新的安装说明，需要 Docker。", encoding="utf-8")
    emb = store.embeddings()
    real = emb.embed_documents
    calls = {"n": 0}

    def flaky(texts):
        calls["n"] += 1
        if calls["n"] == 2:  # the second batch of deploy.md: some chunks are already in Chroma
            raise RuntimeError("simulated GPU out of memory")
        return real(texts)

    monkeypatch.setattr(type(emb), "embed_documents", lambda self, texts: flaky(texts))
    summary = ingest_paths(store, "kb", [folder / "deploy.md", folder / "安装指南.md"])
    monkeypatch.undo()
    res = _by_name(summary)
    assert res["deploy.md"].status == FAILED and "simulated GPU out of memory" in res["deploy.md"].reason
    assert res["安装指南.md"].status == REPLACED
    # the previous deploy.md is intact and still answers
    assert store.find_document(kb, "m/deploy.md").id == old_doc.id
    assert "8 GB" in search(store, "kb", "How much memory does the server need?", k=3)[0].text
    after = store.verify("kb")
    assert after["consistent"] and after["transient_documents"] == 0
    assert after["ready_documents"] == before["ready_documents"]


def test_ingest_into_kb_with_unsupported_and_missing_only(store, tmp_path):
    (tmp_path / "x.xlsx").write_bytes(b"PK..")
    summary = ingest_paths(store, "kb", [tmp_path / "x.xlsx"])
    assert summary.results[0].status == SKIPPED and summary.failed == []
