"""The REST and OpenAI-compatible contract, in-process: `TestClient(create_app(service))` with the mock
embedder and the extractive mock model (rag.mock), so these run in seconds. What the models do is
tested against the real ones in test_api.py (a real `ragkb serve` process) and test_answers_llm.py."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from app.server import create_app
from app.services import RagkbService
from rag.answer.prompts import NO_ANSWER, is_refusal
from rag.registry import doc_of
from rag.settings import Settings

GUIDE = """# Deployment guide

## Backups

Backups run every night at 02:00 and are kept for 14 days.

## Ports

The web server listens on port 8443 by default.
"""
HANDBOOK = "差旅报销规定。\n\n员工出差住宿费用每晚不超过六百元。超过标准的住宿费用需要部门经理批准。\n"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    d = tmp_path_factory.mktemp("contract")
    settings = Settings(data_dir=d / "data", embedding_model="mock:hash", llm_mode="mock", max_file_mb=0.1,
                        _env_file=None)
    with TestClient(create_app(RagkbService(settings), ui=False)) as c:
        r = c.post("/api/kbs", json={"name": "docs"})
        assert r.status_code == 201, r.text
        r = c.post("/api/kbs/docs/documents", files=[("files", ("guide.md", GUIDE.encode(), "text/markdown")),
                                                      ("files", ("手册.txt", HANDBOOK.encode(), "text/plain"))])
        assert r.status_code == 200 and r.json()["ingested"] == 2, r.text
        yield c


def _error(r, status: int, kind: str) -> str:
    assert r.status_code == status, r.text
    body = r.json()["error"]
    assert body["type"] == kind and body["code"] == status
    return body["message"]


def test_knowledge_base_errors_have_one_shape(client):
    assert "nope" in _error(client.get("/api/kbs/nope"), 404, "not_found")
    assert "docs" in _error(client.post("/api/kbs", json={"name": "docs"}), 409, "conflict")
    _error(client.post("/api/kbs", json={"name": "  "}), 422, "invalid_request")
    _error(client.put("/api/kbs/docs"), 405, "method_not_allowed")
    _error(client.get("/api/no-such-route"), 404, "not_found")
    r = client.get("/api/kbs/docs")
    assert r.json()["documents"] == 2 and r.json()["embedding_model"] == "mock:hash"


def test_upload_refusals_are_typed_413_and_415_and_name_the_file(client):
    msg = _error(client.post("/api/kbs/docs/documents", files=[("files", ("tool.exe", b"MZ", "application/x-msdownload"))]),
                 415, "invalid_file")
    assert "tool.exe" in msg and "unsupported file type" in msg
    big = b"x" * 120_000  # over RAGKB_MAX_FILE_MB=0.1
    msg = _error(client.post("/api/kbs/docs/documents", files=[("files", ("big.txt", big, "text/plain"))]),
                 413, "invalid_file")
    assert "big.txt" in msg and "RAGKB_MAX_FILE_MB" in msg
    # one acceptable file: the request succeeds and the refused one is reported per file
    r = client.post("/api/kbs/docs/documents", files=[("files", ("big.txt", big, "text/plain")),
                                                      ("files", ("guide.md", GUIDE.encode(), "text/markdown"))])
    by = {x["name"]: x for x in r.json()["results"]}
    assert by["big.txt"]["status"] == "failed" and by["guide.md"]["status"] == "skipped"  # unchanged: not duplicated


def test_search_hits_carry_parseable_chunk_ids(client):
    hits = client.post("/api/kbs/docs/search", json={"query": "port 8443", "k": 3}).json()
    assert hits[0]["filename"] == "guide.md" and "8443" in hits[0]["text"]
    assert all(doc_of(h["chunk_id"]) == h["doc_id"] for h in hits)


def test_ask_answers_cites_and_stores_the_conversation(client):
    r = client.post("/api/kbs/docs/ask", json={"question": "How long are backups kept?"})
    body = r.json()
    assert r.status_code == 200 and "14 days" in body["answer"] and "[1]" in body["answer"]
    assert body["refused"] is False and body["sources"][0]["filename"] == "guide.md"
    assert body["refused"] == is_refusal(body["answer"])  # the flag is the evaluation's rule
    conv = client.get(f"/api/conversations/{body['conversation_id']}").json()
    assert [m["role"] for m in conv["messages"]] == ["user", "assistant"]
    assert conv["messages"][1]["id"] == body["message_id"] and conv["knowledge_base"] == "docs"


def test_out_of_scope_question_is_refused_with_the_flag_set(client):
    body = client.post("/api/kbs/docs/ask", json={"question": "Who won the 1998 football world cup?"}).json()
    assert body["answer"] == NO_ANSWER["en"] and body["refused"] is True and body["sources"] == []


def test_streamed_events_are_the_typed_events_in_order(client):
    r = client.post("/api/kbs/docs/ask", json={"question": "住宿费用每晚不超过多少？", "stream": True})
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]
    types = [e["type"] for e in events]
    assert types[0] == "conversation" and types[-2:] == ["sources", "done"] and "token" in types
    text = "".join(e["text"] for e in events if e["type"] == "token")
    assert "六百元" in text
    done = events[-1]
    assert done["message_id"] and done["conversation_id"] == events[0]["conversation_id"]
    assert done["refused"] is False and isinstance(done["timings"], dict)
    assert events[-2]["sources"][0]["filename"] == "手册.txt"


def test_feedback_correction_and_bad_cases(client):
    asked = client.post("/api/kbs/docs/ask", json={"question": "Which port does the web server listen on?"}).json()
    mid = asked["message_id"]
    assert client.post(f"/api/messages/{mid}/feedback", json={"rating": -1, "comment": "too short"}).status_code == 204
    _error(client.post(f"/api/messages/{mid}/feedback", json={"rating": 5}), 422, "invalid_request")
    _error(client.post("/api/messages/nope/feedback", json={"rating": 1}), 404, "not_found")
    r = client.post(f"/api/messages/{mid}/correction", json={"answer": "Port 8443, or RAGKB_PORT."})
    assert r.status_code == 201 and r.json()["knowledge_base"] == "docs"
    again = client.post("/api/kbs/docs/ask", json={"question": "Which port does the web server listen on?"}).json()
    assert any(s["kind"] == "correction" for s in again["sources"])
    cases = [json.loads(x) for x in client.get("/api/kbs/docs/bad-cases").text.splitlines()]
    assert {c["type"] for c in cases} == {"thumbs_down", "correction"}


def test_openai_route_answers_and_streams(client):
    models = client.get("/v1/models").json()
    assert "docs" in [m["id"] for m in models["data"]]
    msgs = [{"role": "user", "content": "How long are backups kept?"}]
    body = client.post("/v1/chat/completions", json={"model": "docs", "messages": msgs}).json()
    assert "14 days" in body["choices"][0]["message"]["content"] and body["sources"][0]["filename"] == "guide.md"
    r = client.post("/v1/chat/completions", json={"model": "docs", "messages": msgs, "stream": True})
    chunks = [json.loads(x[6:]) for x in r.text.splitlines() if x.startswith("data: {")]
    assert r.text.rstrip().endswith("data: [DONE]")
    assert "14 days" in "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop" and chunks[-1]["sources"]
    _error(client.post("/v1/chat/completions", json={"model": "nope", "messages": msgs}), 404, "not_found")
    _error(client.post("/v1/chat/completions", json={"model": "docs", "messages": [{"role": "assistant", "content": "hi"}]}),
           422, "invalid_request")


MEMORY = "Most companies keep them for about a year in cloud storage such as Amazon S3 or Azure Blob."


def _remembering(monkeypatch) -> None:  # noqa: ANN001
    """The mock model answers from 'memory' (words in no passage, no citation) instead of the context."""
    import rag.mock

    extractive = rag.mock.extractive_reply
    monkeypatch.setattr(rag.mock, "extractive_reply",
                        lambda prompt: MEMORY if "Context blocks:" in prompt else extractive(prompt))


def test_an_answer_from_the_models_memory_is_flagged_in_every_face(client, monkeypatch, tmp_path):
    _remembering(monkeypatch)
    body = client.post("/api/kbs/docs/ask", json={"question": "How long are backups kept?"}).json()
    assert body["answer"] == MEMORY and body["sources"] == [] and body["refused"] is False
    assert [c["kind"] for c in body["unsupported_claims"]] == ["uncited"]
    # ...and it stays flagged in the stored conversation
    conv = client.get(f"/api/conversations/{body['conversation_id']}").json()
    assert conv["messages"][1]["unsupported_claims"][0]["kind"] == "uncited"
    msgs = [{"role": "user", "content": "How long are backups kept?"}]
    got = client.post("/v1/chat/completions", json={"model": "docs", "messages": msgs}).json()
    assert got["choices"][0]["message"]["unsupported_claims"][0]["kind"] == "uncited"
    from typer.testing import CliRunner

    from app.cli import app

    monkeypatch.setenv("RAGKB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RAGKB_EMBEDDING_MODEL", "mock:hash")
    monkeypatch.setenv("RAGKB_LLM_MODE", "mock")
    (tmp_path / "guide.md").write_text(GUIDE, encoding="utf-8")
    run = CliRunner().invoke
    assert run(app, ["ingest", "kb", str(tmp_path / "guide.md"), "-q"]).exit_code == 0
    r = run(app, ["ask", "kb", "How long are backups kept?"])
    assert MEMORY in r.output and "probably comes from the model's own knowledge" in r.output


def test_retrieval_test_explains_the_gate(client):
    hits = client.post("/api/kbs/docs/search", json={"query": "How long are backups kept?", "k": 5, "explain": True}).json()
    top = hits[0]
    assert "14 days" in top["text"] and top["gate"]["kept"] and top["gate"]["in_prompt"]
    assert "topic words" in top["gate"]["why"] and top["bm25_rank"] == 1
    plain = client.post("/api/kbs/docs/search", json={"query": "backups", "k": 5}).json()
    assert plain[0]["gate"] is None


def test_a_switched_off_chunk_leaves_search_and_answers_and_comes_back(client):
    chunks = client.get("/api/kbs/docs/documents/guide.md/chunks", params={"contains": "8443"}).json()
    assert len(chunks) == 1 and chunks[0]["enabled"] and chunks[0]["length"] == len(chunks[0]["text"])
    cid = chunks[0]["id"]
    r = client.patch(f"/api/kbs/docs/chunks/{cid}", json={"enabled": False})
    assert r.status_code == 200 and r.json()["enabled"] is False
    assert all(h["chunk_id"] != cid for h in client.post("/api/kbs/docs/search", json={"query": "port 8443"}).json())
    body = client.post("/api/kbs/docs/ask", json={"question": "Which port does the web server listen on by default?"}).json()
    assert not any(s["kind"] == "document" and "8443" in s["snippet"] for s in body["sources"])
    listed = client.get("/api/kbs/docs/documents/guide.md/chunks").json()
    assert [c["enabled"] for c in listed if c["id"] == cid] == [False]  # still listed, as disabled
    assert client.patch(f"/api/kbs/docs/chunks/{cid}", json={"enabled": True}).json()["enabled"] is True
    assert client.post("/api/kbs/docs/search", json={"query": "port 8443"}).json()[0]["chunk_id"] == cid
    _error(client.patch("/api/kbs/docs/chunks/nope:1", json={"enabled": False}), 404, "not_found")


def test_cli_explains_and_switches_chunks(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from app.cli import app

    monkeypatch.setenv("RAGKB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RAGKB_EMBEDDING_MODEL", "mock:hash")
    (tmp_path / "guide.md").write_text(GUIDE, encoding="utf-8")
    run = CliRunner().invoke
    assert run(app, ["ingest", "kb", str(tmp_path / "guide.md"), "-q"]).exit_code == 0
    r = run(app, ["search", "kb", "How long are backups kept?", "--explain"])
    assert r.exit_code == 0 and "in the prompt" in r.output and "topic words" in r.output
    rows = json.loads(run(app, ["chunks", "list", "kb", "guide.md", "--json", "--contains", "14 days"]).output)
    assert len(rows) == 1 and rows[0]["enabled"]
    assert run(app, ["chunks", "disable", "kb", rows[0]["id"]]).exit_code == 0
    hits = json.loads(run(app, ["search", "kb", "backups kept 14 days", "--json"]).output)
    assert rows[0]["id"] not in [h["chunk_id"] for h in hits]
    assert run(app, ["reindex", "kb"]).exit_code == 0  # the switch survives re-embedding
    hits = json.loads(run(app, ["search", "kb", "backups kept 14 days", "--json"]).output)
    assert rows[0]["id"] not in [h["chunk_id"] for h in hits]
    assert "(disabled)" in run(app, ["chunks", "list", "kb", "guide.md"]).output
    # a new version of the file that still has that chunk: it stays off (keyed by file and text, not id)
    (tmp_path / "guide.md").write_text(GUIDE + "\n## Logs\n\nLogs are kept for 30 days.\n", encoding="utf-8")
    assert "replaced" in run(app, ["ingest", "kb", str(tmp_path / "guide.md")]).output
    again = json.loads(run(app, ["chunks", "list", "kb", "guide.md", "--json", "--contains", "14 days"]).output)
    assert len(again) == 1 and again[0]["enabled"] is False
    r = run(app, ["chunks", "disable", "kb", "nope:3"])
    assert r.exit_code == 2 and "nope:3" in r.output
    # the source preview from the command line: a PDF page with a passage highlighted
    from docs import zh_pdf

    assert run(app, ["ingest", "kb", str(zh_pdf(tmp_path / "手册.pdf")), "-q"]).exit_code == 0
    r = run(app, ["page", "kb", "手册.pdf", "2", "--highlight", "报销单需要附上发票原件。", "-o", str(tmp_path / "p2.png")])
    assert r.exit_code == 0 and "box(es) highlighted" in r.output and (tmp_path / "p2.png").read_bytes()[:4] == b"\x89PNG"
    r = run(app, ["page", "kb", "guide.md", "1"])
    assert r.exit_code == 2 and "not a PDF" in r.output


def test_word_and_html_uploads_join_the_markdown_path(client, tmp_path):
    from docs import EN_HTML, zh_docx

    docx = zh_docx(tmp_path / "手册.docx").read_bytes()
    r = client.post("/api/kbs/docs/documents", files=[
        ("files", ("手册.docx", docx, "application/vnd.openxmlformats-officedocument.wordprocessingml.document")),
        ("files", ("ops.htm", EN_HTML.encode(), "text/html")),
        ("files", ("locked.docx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, "application/octet-stream"))])
    by = {x["name"]: x for x in r.json()["results"]}
    assert by["手册.docx"]["status"] == "ingested" and by["手册.docx"]["warnings"] == ["1 image(s) ignored: only text is searched"]
    assert by["ops.htm"]["status"] == "ingested"
    assert by["locked.docx"]["status"] == "failed" and "password-protected" in by["locked.docx"]["reason"]
    hit = client.post("/api/kbs/docs/search", json={"query": "北京 每晚上限", "k": 1}).json()[0]
    assert hit["filename"] == "手册.docx" and hit["section"] == "员工手册 > 差旅报销 > 住宿标准" and "六百元" in hit["text"]
    hit = client.post("/api/kbs/docs/search", json={"query": "metrics port 9100", "k": 1}).json()[0]
    assert hit["filename"] == "ops.htm" and "window.__x" not in hit["text"]
    assert [d["filename"] for d in client.get("/api/kbs/docs/documents").json() if d["status"] == "failed"] == ["locked.docx"]


def test_a_scanned_pdf_upload_is_read_by_ocr(client, tmp_path):
    from docs import image_only_pdf, zh_pdf

    scan = image_only_pdf(zh_pdf(tmp_path / "t.pdf"), tmp_path / "扫描件.pdf", pages=[1])
    r = client.post("/api/kbs/docs/documents", files=[("files", ("扫描件.pdf", scan.read_bytes(), "application/pdf"))])
    result = r.json()["results"][0]
    assert result["status"] == "ingested" and result["ocr_pages"] == 1 and result["pages"] == 1
    assert any("OCR" in w for w in result["warnings"])
    hit = client.post("/api/kbs/docs/search", json={"query": "报销单 发票原件", "k": 3}).json()
    assert any(h["filename"] == "扫描件.pdf" and h["page"] == 1 and "五个工作日" in "".join(h["text"].split()) for h in hit)


def test_page_preview_highlights_the_cited_passage_and_goes_with_its_document(client, tmp_path):
    import io

    from PIL import Image

    from docs import zh_pdf

    def yellow(img) -> int:  # noqa: ANN001  (pixels of the highlight colour)
        import numpy as np

        a = np.asarray(img)
        return int(((a[..., 0] > 200) & (a[..., 1] > 180) & (a[..., 2] < 150)).sum())

    pdf = zh_pdf(tmp_path / "员工手册.pdf")
    assert client.post("/api/kbs", json={"name": "preview"}).status_code == 201
    assert client.post("/api/kbs/preview/documents", files=[("files", (pdf.name, pdf.read_bytes(), "application/pdf"))]).status_code == 200
    body = client.post("/api/kbs/preview/ask", json={"question": "报销单需要附上发票原件吗？"}).json()
    src = body["sources"][0]
    assert src["filename"] == "员工手册.pdf" and src["page"] == 2
    url = f"/api/kbs/preview/documents/员工手册.pdf/pages/{src['page']}.png"
    r = client.get(url, params={"highlight": src["snippet"]})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert int(r.headers["x-ragkb-highlighted"]) >= 1
    marked = Image.open(io.BytesIO(r.content)).convert("RGB")
    plain = Image.open(io.BytesIO(client.get(url).content)).convert("RGB")
    assert marked.size == plain.size and yellow(marked) > 500 and yellow(plain) < 50
    assert "No page 9" in _error(client.get("/api/kbs/preview/documents/员工手册.pdf/pages/9.png"), 400, "bad_request")
    assert "not a PDF" in _error(client.get("/api/kbs/docs/documents/guide.md/pages/1.png"), 400, "bad_request")
    # the kept original goes with its document
    service = client.app.state.service
    row = service.store.find_document(service.store.get_row("preview"), "员工手册.pdf")
    kept = service.store.original_of(row)
    assert kept is not None and kept.read_bytes() == pdf.read_bytes()
    assert client.delete("/api/kbs/preview/documents/员工手册.pdf").status_code == 204
    assert not kept.exists()
    _error(client.get(url), 404, "not_found")


def test_rebuilding_the_index_through_the_api(client):
    """POST .../index builds a new index in the background while the old one serves; GET shows progress, then the
    comparison; POST .../index/switch switches; bad model names are 422 and change nothing."""
    import time

    assert client.get("/api/kbs/docs/index").json() == {
        "knowledge_base": "docs", "current_model": "mock:hash", "model": None, "status": "none", "done": 0, "total": 0,
        "running": False, "error": None, "comparison": None}
    msg = _error(client.post("/api/kbs/docs/index", json={"model": "no-such/model"}), 422, "invalid_request")
    assert "Unknown embedding model 'no-such/model'" in msg
    assert client.get("/api/kbs/docs/index").json()["status"] == "none"
    assert "no new index" in _error(client.post("/api/kbs/docs/index/switch"), 409, "conflict")
    _error(client.post("/api/kbs/nope/index", json={}), 404, "not_found")
    r = client.post("/api/kbs/docs/index", json={})  # the configured model (a rebuild with the same one is allowed)
    assert r.status_code == 202 and r.json()["model"] == "mock:hash"
    deadline = time.monotonic() + 60
    while (st := client.get("/api/kbs/docs/index").json())["status"] == "building":
        assert time.monotonic() < deadline, st
        time.sleep(0.2)
    assert st["status"] == "built" and st["done"] == st["total"] > 0 and st["comparison"]["cases"]
    assert client.post("/api/kbs/docs/search", json={"query": "port 8443", "k": 1}).json()[0]["filename"] == "guide.md"
    kb = client.post("/api/kbs/docs/index/switch")
    assert kb.status_code == 200 and kb.json()["embedding_model"] == "mock:hash" and kb.json()["embedding_note"] is None
    assert client.get("/api/kbs/docs/index").json()["status"] == "none"
    assert client.post("/api/kbs/docs/search", json={"query": "port 8443", "k": 1}).json()[0]["filename"] == "guide.md"
    assert client.delete("/api/kbs/docs/index").status_code == 204  # nothing to cancel: still fine
