"""The REST and OpenAI-compatible API of a real `ragkb serve` process, with API keys on, used through
httpx and the official `openai` client (answers from the real embedded llama.cpp server)."""

from __future__ import annotations

import json

import httpx
import pytest

from docs import EN_GUIDE_MD, zh_pdf
from webui import running_server

KEY = "test-key-123"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    d = tmp_path_factory.mktemp("api")
    with running_server(d / "data", d / "serve.log", RAGKB_API_KEYS=f"other-key,{KEY}", RAGKB_MAX_FILE_MB="1") as url:
        yield url


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server, headers={"Authorization": f"Bearer {KEY}"}, timeout=300) as c:
        yield c


@pytest.fixture(scope="module")
def kb(http, tmp_path_factory):
    d = tmp_path_factory.mktemp("files")
    pdf = zh_pdf(d / "员工手册.pdf")
    r = http.post("/api/kbs", json={"name": "手册 API"})
    assert r.status_code == 201, r.text
    files = [("files", ("员工手册.pdf", pdf.read_bytes(), "application/pdf")),
             ("files", ("../../deploy.md", EN_GUIDE_MD.encode(), "text/markdown")),
             ("files", ("virus.exe", b"MZ", "application/octet-stream"))]
    r = http.post("/api/kbs/手册 API/documents", files=files)
    assert r.status_code == 200, r.text
    body = r.json()
    by = {x["name"]: x for x in body["results"]}
    assert by["员工手册.pdf"]["status"] == "ingested" and by["员工手册.pdf"]["pages"] == 3
    assert by["deploy.md"]["status"] == "ingested"  # the path in the name is dropped
    assert by["virus.exe"]["status"] == "failed" and "unsupported file type" in by["virus.exe"]["reason"]
    assert (body["ingested"], body["failed"]) == (2, 1)
    return "手册 API"


def test_every_route_needs_the_key_but_health(server):
    assert httpx.get(f"{server}/api/health").json()["status"] == "ok"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "nope"}):
        r = httpx.get(f"{server}/api/kbs", headers=headers)
        assert r.status_code == 401 and "API key" in r.json()["error"]["message"]
        assert httpx.get(f"{server}/v1/models", headers=headers).status_code == 401
    assert httpx.get(f"{server}/api/kbs", headers={"X-API-Key": "other-key"}).status_code == 200


def test_knowledge_base_routes_and_error_statuses(http, kb):
    names = [k["name"] for k in http.get("/api/kbs").json()]
    assert kb in names
    assert http.post("/api/kbs", json={"name": kb}).status_code == 409
    r = http.get("/api/kbs/missing")
    assert r.status_code == 404 and "missing" in r.json()["error"]["message"]
    r = http.post("/api/kbs", json={"nom": "x"})
    assert r.status_code == 422 and "name" in r.json()["error"]["message"]
    assert http.post("/api/kbs", json={"name": "tmp"}).status_code == 201
    r = http.patch("/api/kbs/tmp", json={"name": "临时"})
    assert r.status_code == 200 and r.json()["name"] == "临时"
    assert http.delete("/api/kbs/临时").status_code == 204
    assert http.get("/api/kbs/临时").status_code == 404


def test_upload_statuses_and_document_routes(http, kb):
    r = http.post(f"/api/kbs/{kb}/documents", files=[("files", ("a.xlsx", b"PK..", "application/octet-stream"))])
    assert r.status_code == 415 and "a.xlsx" in r.json()["error"]["message"]
    big = b"x" * (1024 * 1024 + 10)
    r = http.post(f"/api/kbs/{kb}/documents", files=[("files", ("big.txt", big, "text/plain"))])
    assert r.status_code == 413 and "1 MB limit" in r.json()["error"]["message"]
    assert http.post("/api/kbs/missing/documents", files=[("files", ("a.md", b"# a", "text/markdown"))]).status_code == 404
    docs = http.get(f"/api/kbs/{kb}/documents").json()
    assert {d["filename"] for d in docs} >= {"员工手册.pdf", "deploy.md"}
    r = http.post(f"/api/kbs/{kb}/documents", files=[("files", ("extra.md", b"# Extra\n\nzebra facts", "text/markdown"))])
    assert r.json()["ingested"] == 1
    assert http.delete(f"/api/kbs/{kb}/documents/extra.md").status_code == 204
    assert http.delete(f"/api/kbs/{kb}/documents/extra.md").status_code == 404


def test_search(http, kb):
    hits = http.post(f"/api/kbs/{kb}/search", json={"query": "报销单需要附上什么", "k": 3}).json()
    assert hits[0]["filename"] == "员工手册.pdf" and hits[0]["page"] == 2
    assert http.post(f"/api/kbs/{kb}/search", json={"query": ""}).status_code == 422


@pytest.mark.llm
def test_openai_client_chat_completions(server, kb):
    import openai

    client = openai.OpenAI(base_url=f"{server}/v1", api_key=KEY, timeout=300)
    assert kb in [m.id for m in client.models.list()]
    done = client.chat.completions.create(model=kb, messages=[{"role": "user", "content": "报销单需要附上什么？"}])
    msg = done.choices[0].message
    assert "发票" in msg.content
    extra = done.model_extra["sources"]
    assert extra and extra[0]["filename"] == "员工手册.pdf" and extra[0]["page"] == 2

    stream = client.chat.completions.create(
        model=kb, stream=True,
        messages=[{"role": "system", "content": "ignored"},
                  {"role": "user", "content": "What does the server need?"}])
    pieces, sources = [], None
    for ch in stream:
        if ch.choices and ch.choices[0].delta.content:
            pieces.append(ch.choices[0].delta.content)
        if ch.model_extra.get("sources") is not None:
            sources = ch.model_extra["sources"]
    assert len(pieces) >= 3  # streamed; the wording is the small model's business
    assert sources and sources[0]["filename"] == "deploy.md"

    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no such kb", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.UnprocessableEntityError):
        client.chat.completions.create(model=kb, messages=[{"role": "assistant", "content": "hi"}])
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{server}/v1", api_key="bad").models.list()


@pytest.mark.llm
def test_ask_streams_events_and_keeps_the_conversation(http, kb):
    events = []
    with http.stream("POST", f"/api/kbs/{kb}/ask", json={"question": "报销单需要附上什么？", "stream": True}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    types = [e["type"] for e in events]
    assert types[0] == "conversation" and types[-1] == "done" and types.count("token") >= 3
    cid = events[0]["conversation_id"]
    r = http.post(f"/api/kbs/{kb}/ask", json={"question": "财务部门多久付款？", "conversation_id": cid})
    assert r.status_code == 200 and r.json()["conversation_id"] == cid
    conv = http.get(f"/api/conversations/{cid}").json()
    assert [m["role"] for m in conv["messages"]] == ["user", "assistant", "user", "assistant"]
    assert cid in [c["id"] for c in http.get("/api/conversations").json()]
    assert http.delete(f"/api/conversations/{cid}").status_code == 204
    assert http.get(f"/api/conversations/{cid}").status_code == 404
    assert http.post(f"/api/kbs/{kb}/ask", json={"question": "x", "conversation_id": "nope"}).status_code == 404


def test_model_server_down_is_a_503(tmp_path):
    from rag.local_llm import free_port

    dead = f"http://127.0.0.1:{free_port()}/v1"
    with running_server(tmp_path / "data", tmp_path / "serve.log", RAGKB_LLM_BASE_URL=dead,
                        RAGKB_LLM_TIMEOUT="5") as url:
        c = httpx.Client(base_url=url, timeout=60)
        assert c.post("/api/kbs", json={"name": "kb"}).status_code == 201
        r = c.post("/api/kbs/kb/documents", files=[("files", ("a.md", b"# Leave\n\nFive days of leave.", "text/markdown"))])
        assert r.json()["ingested"] == 1
        r = c.post("/v1/chat/completions", json={"model": "kb", "messages": [{"role": "user", "content": "How many days of leave?"}]})
        assert r.status_code == 503, r.text
        assert dead.rsplit("/", 1)[0] in r.json()["error"]["message"]
        r = c.post("/api/kbs/kb/ask", json={"question": "How many days of leave?"})
        assert r.status_code == 503


@pytest.mark.llm
def test_feedback_correction_and_bad_cases_through_the_api(http, kb):
    """What the web UI's 👍/👎 and "the right answer" do, the API does: the correction then comes back as a
    source of later answers to the question, and both land in the knowledge base's bad-case export."""
    r = http.post(f"/api/kbs/{kb}/ask", json={"question": "出差住宿费超过标准需要谁批准？"})
    assert r.status_code == 200, r.text
    mid = r.json()["message_id"]
    assert http.post(f"/api/messages/{mid}/feedback", json={"rating": -1, "comment": "too vague"}).status_code == 204
    assert http.post(f"/api/messages/{mid}/feedback", json={"rating": 5}).status_code == 422
    assert http.post("/api/messages/nope/feedback", json={"rating": 1}).status_code == 404
    r = http.post(f"/api/messages/{mid}/correction", json={"answer": "需要副总经理特别批准，审批单号 RX-42。"})
    assert r.status_code == 201, r.text
    stored = r.json()
    assert stored["knowledge_base"] == kb and stored["question"] == "出差住宿费超过标准需要谁批准？"
    assert stored["message_id"] == mid
    assert http.post("/api/messages/nope/correction", json={"answer": "x"}).status_code == 404

    again = http.post(f"/api/kbs/{kb}/ask", json={"question": "出差住宿费超过标准需要谁批准？"}).json()
    corrections = [s for s in again["sources"] if s["kind"] == "correction"]
    assert corrections and "RX-42" in corrections[0]["snippet"]

    r = http.get(f"/api/kbs/{kb}/bad-cases")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    cases = [json.loads(line) for line in r.text.splitlines()]
    assert {c["type"] for c in cases} == {"thumbs_down", "correction"}
    assert all(c["kb"] == kb for c in cases)
    assert next(c for c in cases if c["type"] == "correction")["expected_answer"].endswith("RX-42。")
    assert http.get("/api/kbs/nope/bad-cases").status_code == 404
