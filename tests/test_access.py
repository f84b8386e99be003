"""Users and per-knowledge-base roles through the REST and OpenAI-compatible API, in-process with the mock embedder
and model (what is checked is who may do what, not the answers): every role x action, 401 / 403 / 404 / 200, and
the users' own conversations. The CLI that creates users and keys is tested against a real process at the end."""

from __future__ import annotations

import subprocess

import pytest
from fastapi.testclient import TestClient

from app.server import create_app
from app.services import RagkbService
from rag.settings import Settings

DOC = "# Travel\n\nHotel costs are refunded up to 600 yuan a night.\n"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    d = tmp_path_factory.mktemp("access")
    service = RagkbService(Settings(data_dir=d / "data", embedding_model="mock:hash", llm_mode="mock", _env_file=None))
    with TestClient(create_app(service, ui=False)) as c:
        # before any user exists the API is open, as it always was
        assert c.post("/api/kbs", json={"name": "finance"}).status_code == 201
        assert c.post("/api/kbs/finance/documents", files=[("files", ("travel.md", DOC.encode(), "text/markdown"))]).json()["ingested"] == 1
        assert c.post("/api/kbs", json={"name": "hr"}).status_code == 201
        users = service.users
        users.add("root", "root-password")  # the first user: an admin
        keys = {}
        for name in ("vic", "eddie", "olga", "nobody"):
            users.add(name, f"{name}-password")
            keys[name] = users.new_key(name)
        keys["root"] = users.new_key("root")
        fin = service.kb("finance").id
        users.grant(fin, "vic", "viewer")
        users.grant(fin, "eddie", "editor")
        users.grant(fin, "olga", "owner")
        yield c, keys, service


def as_(keys, who):  # noqa: ANN001, ANN201
    return {"Authorization": f"Bearer {keys[who]}"}


def test_no_key_or_a_wrong_or_revoked_one_is_401(api):
    c, keys, service = api
    for headers in ({}, {"Authorization": "Bearer rk-not-a-key"}, {"X-API-Key": "nope"}):
        for path in ("/api/kbs", "/v1/models", "/api/conversations", "/api/kbs/finance/members"):
            r = c.get(path, headers=headers)
            assert r.status_code == 401 and r.json()["error"]["type"] == "unauthorized", (path, r.text)
    assert c.get("/api/health").status_code == 200
    spare = service.users.new_key("vic")
    assert c.get("/api/kbs", headers={"X-API-Key": spare}).status_code == 200
    assert service.users.revoke_key(spare[:11]) == "vic"
    assert c.get("/api/kbs", headers={"X-API-Key": spare}).status_code == 401


def test_a_knowledge_base_without_a_role_is_invisible(api):
    c, keys, _ = api
    h = as_(keys, "nobody")
    assert c.get("/api/kbs", headers=h).json() == []
    assert c.get("/v1/models", headers=h).json()["data"] == []
    for method, path, body in [("get", "/api/kbs/finance", None), ("post", "/api/kbs/finance/search", {"query": "hotel"}),
                               ("get", "/api/kbs/finance/documents", None), ("delete", "/api/kbs/finance", None),
                               ("post", "/api/kbs/finance/ask", {"question": "hotel?"})]:
        r = c.request(method, path, headers=h, json=body)
        assert r.status_code == 404 and "does not exist" in r.json()["error"]["message"], (path, r.text)
    r = c.post("/v1/chat/completions", headers=h, json={"model": "finance", "messages": [{"role": "user", "content": "hotel?"}]})
    assert r.status_code == 404
    # the viewer sees finance only; the admin sees both
    assert [k["name"] for k in c.get("/api/kbs", headers=as_(keys, "vic")).json()] == ["finance"]
    assert [m["id"] for m in c.get("/v1/models", headers=as_(keys, "vic")).json()["data"]] == ["finance"]
    assert {k["name"] for k in c.get("/api/kbs", headers=as_(keys, "root")).json()} == {"finance", "hr"}


ACTIONS = {  # action -> the least role that may do it
    "search": "viewer", "ask": "viewer", "openai chat": "viewer", "list documents": "viewer",
    "upload": "editor", "disable a chunk": "editor", "delete a document": "editor",
    "list members": "owner", "grant": "owner", "rename": "owner", "re-index": "owner",
}
ORDER = ["viewer", "editor", "owner"]


def _do(c, h, action):  # noqa: ANN001, ANN202
    if action == "search":
        return c.post("/api/kbs/finance/search", headers=h, json={"query": "hotel"})
    if action == "ask":
        return c.post("/api/kbs/finance/ask", headers=h, json={"question": "How much is refunded for a hotel?"})
    if action == "openai chat":
        return c.post("/v1/chat/completions", headers=h, json={"model": "finance", "messages": [{"role": "user", "content": "hotel refund?"}]})
    if action == "list documents":
        return c.get("/api/kbs/finance/documents", headers=h)
    if action == "upload":
        return c.post("/api/kbs/finance/documents", headers=h, files=[("files", ("more.md", b"# More\n\nTaxis are refunded.\n", "text/markdown"))])
    if action == "disable a chunk":
        chunk = c.post("/api/kbs/finance/search", headers=h, json={"query": "taxis"}).json()[0]["chunk_id"]
        return c.patch(f"/api/kbs/finance/chunks/{chunk}", headers=h, json={"enabled": True})
    if action == "delete a document":
        return c.delete("/api/kbs/finance/documents/more.md", headers=h)
    if action == "list members":
        return c.get("/api/kbs/finance/members", headers=h)
    if action == "grant":
        return c.put("/api/kbs/finance/members/nobody", headers=h, json={"role": "viewer"})
    if action == "rename":
        return c.patch("/api/kbs/finance", headers=h, json={"name": "finance"})
    if action == "re-index":
        return c.delete("/api/kbs/finance/index", headers=h)  # discard a new index
    raise AssertionError(action)


@pytest.mark.parametrize("who,role", [("vic", "viewer"), ("eddie", "editor"), ("olga", "owner"), ("root", "admin")])
def test_each_role_may_do_what_its_role_allows_and_gets_403_with_the_reason_otherwise(api, who, role):
    c, keys, service = api
    h = as_(keys, who)
    for action, least in ACTIONS.items():
        allowed = role == "admin" or ORDER.index(role) >= ORDER.index(least)
        if action in ("disable a chunk", "delete a document") and allowed:
            _do(c, as_(keys, "eddie"), "upload")  # the document these act on
        r = _do(c, h, action)
        if allowed:
            # re-index cancel with no build running is a 409 (nothing to discard): allowed, and refused for that reason
            assert r.status_code in (200, 201, 204) or (action == "re-index" and r.status_code == 409), (who, action, r.text)
        else:
            assert r.status_code == 403, (who, action, r.text)
            err = r.json()["error"]
            assert err["type"] == "forbidden" and who in err["message"] and role in err["message"] and least in err["message"]
    if role != "admin":
        service.users.revoke(service.kb("finance").id, "nobody")


def test_only_an_owner_deletes_and_the_roles_go_with_the_knowledge_base(api):
    c, keys, service = api
    assert c.post("/api/kbs", headers=as_(keys, "vic"), json={"name": "vic's notes"}).status_code == 201
    assert c.put("/api/kbs/vic's notes/members/eddie", headers=as_(keys, "vic"), json={"role": "viewer"}).json() == [
        {"user": "eddie", "role": "viewer"}, {"user": "vic", "role": "owner"}]
    assert c.delete("/api/kbs/vic's notes", headers=as_(keys, "eddie")).status_code == 403
    assert c.delete("/api/kbs/vic's notes", headers=as_(keys, "vic")).status_code == 204
    assert c.post("/api/kbs", headers=as_(keys, "root"), json={"name": "vic's notes"}).status_code == 201
    assert c.get("/api/kbs/vic's notes", headers=as_(keys, "eddie")).status_code == 404  # no role carried over
    r = c.put("/api/kbs/finance/members/ghost", headers=as_(keys, "olga"), json={"role": "viewer"})
    assert r.status_code == 404 and "ghost" in r.json()["error"]["message"]
    assert c.delete("/api/kbs/finance/members/ghost", headers=as_(keys, "olga")).status_code == 404
    r = c.put("/api/kbs/finance/members/vic", headers=as_(keys, "olga"), json={"role": "boss"})
    assert r.status_code == 422


def test_conversations_stay_private_to_their_user(api):
    c, keys, _ = api
    r = c.post("/api/kbs/finance/ask", headers=as_(keys, "vic"), json={"question": "What is refunded for hotels?"})
    cid = r.json()["conversation_id"]
    assert cid in [x["id"] for x in c.get("/api/conversations", headers=as_(keys, "vic")).json()]
    assert cid not in [x["id"] for x in c.get("/api/conversations", headers=as_(keys, "olga")).json()]
    assert c.get(f"/api/conversations/{cid}", headers=as_(keys, "olga")).status_code == 404
    assert c.delete(f"/api/conversations/{cid}", headers=as_(keys, "root")).status_code == 404
    mid = r.json()["message_id"]
    assert c.post(f"/api/messages/{mid}/feedback", headers=as_(keys, "olga"), json={"rating": -1}).status_code == 404
    assert c.post(f"/api/messages/{mid}/feedback", headers=as_(keys, "vic"), json={"rating": 1}).status_code == 204


def test_user_commands_and_a_key_against_a_real_server(tmp_path):
    """`ragkb user add` reads the password from stdin, `ragkb user key` prints a key that `ragkb serve` accepts for that
    user only, `ragkb kb grant` makes the knowledge base appear in its /v1/models, `revoke-key` ends it."""
    import httpx

    from conftest import cli_env, ragkb_exe
    from webui import running_server

    data = tmp_path / "data"
    env = cli_env(data)

    def ragkb(*args, stdin=""):  # noqa: ANN002, ANN202
        return subprocess.run([ragkb_exe(), *args], env=env, input=stdin, capture_output=True, text=True, timeout=120)

    assert ragkb("kb", "create", "财务").returncode == 0
    r = ragkb("user", "add", "alice", stdin="alice-secret\n")
    assert r.returncode == 0 and "admin" in r.stdout, r.stderr
    assert ragkb("user", "add", "bob", stdin="bob-secret-1\n").returncode == 0
    r = ragkb("user", "add", "carl", stdin="short\n")
    assert r.returncode == 2 and "too short" in r.stderr
    key = ragkb("user", "key", "bob").stdout.strip()
    assert key.startswith("rk-")
    r = ragkb("kb", "grant", "财务", "bob", "owner-ish")
    assert r.returncode == 2 and "not a role" in r.stderr
    with running_server(data, tmp_path / "serve.log") as url:
        h = {"Authorization": f"Bearer {key}"}
        assert httpx.get(f"{url}/api/kbs").status_code == 401
        assert httpx.get(f"{url}/v1/models", headers=h).json()["data"] == []
        assert ragkb("kb", "grant", "财务", "bob", "viewer").returncode == 0
        assert [m["id"] for m in httpx.get(f"{url}/v1/models", headers=h).json()["data"]] == ["财务"]
        r = httpx.delete(f"{url}/api/kbs/财务", headers=h)
        assert r.status_code == 403 and "viewer" in r.json()["error"]["message"]
        listed = ragkb("user", "list", "--json").stdout
        assert '"bob"' in listed and '"财务": "viewer"' in listed and key not in listed
        assert ragkb("user", "revoke-key", key[:11]).returncode == 0
        assert httpx.get(f"{url}/v1/models", headers=h).status_code == 401
        assert ragkb("user", "remove", "bob").returncode == 0
