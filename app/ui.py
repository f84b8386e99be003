"""The Gradio web UI: knowledge bases, uploads with progress, streaming chat with sources,
persistent conversations, feedback and corrections. Handlers only call `RagkbService`.
"""

from __future__ import annotations

import html
import queue
import tempfile
import threading
import time
from pathlib import Path

import gradio as gr

from app.services import RagkbService, Upload, safe_display_name
from app.ui_text import i18n, text
from rag.errors import RagkbError

CSS = """
#sources .source { border-left: 3px solid #7c8db5; padding: 4px 10px; margin: 6px 0; }
#sources .source.correction { border-left-color: #e0a100; }
#sources .where { font-weight: 600; }
#sources .snippet { color: #555; font-size: 0.9em; white-space: pre-wrap; }
#ingest-results .failed { color: #b00020; }
#ingest-results .skipped { color: #8a6d00; }
#ingest-results .ok { color: #1b7f3b; }
"""


def _user(request: gr.Request | None) -> str:
    return (getattr(request, "username", None) or "") if request is not None else ""


def _esc(value) -> str:  # noqa: ANN001
    return html.escape(str(value if value is not None else ""), quote=True)


# --- rendering ---------------------------------------------------------------------------------
def sources_html(sources: list[dict], request, refused: bool = False) -> str:  # noqa: ANN001
    if not sources:
        return f"<div class='no-sources'>{_esc(text(request, 'no_sources'))}</div>" if refused else ""
    rows = []
    for s in sources:
        correction = s.get("kind") == "correction"
        if correction:
            where = f"[{s['n']}] {text(request, 'user_correction')} — {s.get('section') or ''}"
        else:
            parts = [f"[{s['n']}] {s['filename']}"]
            if s.get("page"):
                parts.append(f"p. {s['page']}" if text(request, "page") == "page" else f"第 {s['page']} 页")
            if s.get("section"):
                parts.append(s["section"])
            where = " — ".join(parts)
        cls = "source correction" if correction else "source"
        rows.append(f"<div class='{cls}' data-n='{_esc(s['n'])}'><div class='where'>{_esc(where)}</div>"
                    f"<div class='snippet'>{_esc(s.get('snippet', ''))}</div></div>")
    return f"<div class='sources-title'><b>{_esc(text(request, 'sources'))}</b></div>" + "".join(rows)


def result_html(results, request) -> str:  # noqa: ANN001
    label = {"ingested": "result_ingested", "replaced": "result_replaced", "skipped": "result_skipped",
             "failed": "result_failed"}
    items = []
    for r in results:
        cls = "ok" if r.status in ("ingested", "replaced") else r.status
        if r.status in ("ingested", "replaced"):
            detail = text(request, "pages_chunks", pages=r.pages, chunks=r.chunks) if r.pages else \
                text(request, "chunks_only", chunks=r.chunks)
        else:
            detail = r.reason or ""
        warn = "".join(f"<div class='warning'>⚠ {_esc(w)}</div>" for w in r.warnings)
        items.append(f"<li class='{cls}' data-status='{_esc(r.status)}'><b>{_esc(r.name)}</b>: "
                     f"{_esc(text(request, label.get(r.status, 'result_failed')))} — {_esc(detail)}{warn}</li>")
    return "<ul>" + "".join(items) + "</ul>"


def chat_messages(messages) -> tuple[list[dict], list[str]]:  # noqa: ANN001
    out, ids = [], []
    for m in messages:
        content = m.content
        if m.meta.get("error") and m.role == "assistant":
            content = f"⚠️ {m.meta['error']}"
        out.append({"role": m.role, "content": content})
        ids.append(m.id)
    return out, ids


# --- the app -----------------------------------------------------------------------------------
def build_ui(service: RagkbService) -> gr.Blocks:
    T = i18n()

    def kb_choices() -> list[str]:
        return service.kb_names()

    def conv_choices(user: str) -> list[tuple[str, str]]:
        return [(c.title or "…", c.id) for c in service.conversations.list(user)]

    def docs_table(kb: str | None, request) -> list[list]:  # noqa: ANN001
        if not kb:
            return []
        try:
            rows = service.documents(kb)
        except RagkbError:
            return []
        return [[d.filename, d.status, d.pages or "", d.chunks, d.created_at.strftime("%Y-%m-%d %H:%M"),
                 d.error or d.warnings or ""] for d in rows]

    def doc_choices(kb: str | None) -> list[str]:
        if not kb:
            return []
        try:
            return [d.filename for d in service.documents(kb)]
        except RagkbError:
            return []

    with gr.Blocks(title="ragkb") as demo:
        conv_id = gr.State("")
        msg_ids = gr.State([])
        target = gr.State("")

        with gr.Sidebar(open=True):
            gr.Markdown("## ragkb")
            kb = gr.Dropdown(label=T("kb"), choices=[], value=None, interactive=True, elem_id="kb-select",
                             allow_custom_value=False)
            kb_status = gr.Markdown(elem_id="kb-status")
            with gr.Accordion(T("manage_kb"), open=False, elem_id="kb-manage"):
                new_kb = gr.Textbox(label=T("new_kb"), elem_id="new-kb-name")
                create_btn = gr.Button(T("create"), elem_id="create-kb")
                rename_to = gr.Textbox(label=T("rename_to"), elem_id="rename-kb-name")
                rename_btn = gr.Button(T("rename"), elem_id="rename-kb")
                confirm = gr.Checkbox(label=T("confirm_delete"), value=False, elem_id="confirm-delete-kb")
                delete_btn = gr.Button(T("delete_kb"), variant="stop", elem_id="delete-kb")
            new_conv_btn = gr.Button(T("new_conversation"), elem_id="new-conversation")
            convs = gr.Radio(label=T("conversations"), choices=[], value=None, elem_id="conversations")
            with gr.Accordion(T("conversation_title"), open=False):
                conv_title = gr.Textbox(label=T("conversation_title"), elem_id="conversation-title")
                conv_rename_btn = gr.Button(T("rename_conversation"), elem_id="rename-conversation")
                conv_delete_btn = gr.Button(T("delete_conversation"), variant="stop", elem_id="delete-conversation")
            conv_status = gr.Markdown(elem_id="conversation-status")

        with gr.Tabs():
            with gr.Tab(T("chat"), id="chat"):
                chatbot = gr.Chatbot(height=480, elem_id="chatbot", show_label=False, buttons=["copy"], sanitize_html=True,
                                     feedback_options=("Like", "Dislike"))
                with gr.Row():
                    question = gr.Textbox(placeholder=T("question"), show_label=False, scale=8, lines=1,
                                          max_lines=6, elem_id="question")
                    send = gr.Button(T("send"), variant="primary", scale=1, elem_id="send")
                answer_meta = gr.Markdown(elem_id="answer-meta")
                sources = gr.HTML(elem_id="sources")
                with gr.Accordion(T("feedback"), open=False, elem_id="feedback"):
                    target_md = gr.Markdown(elem_id="feedback-target")
                    comment = gr.Textbox(label=T("comment"), elem_id="feedback-comment")
                    with gr.Row():
                        up_btn = gr.Button(T("helpful"), elem_id="thumbs-up")
                        down_btn = gr.Button(T("not_helpful"), elem_id="thumbs-down")
                    correction = gr.Textbox(label=T("correct_answer"), lines=3, elem_id="correction")
                    correct_btn = gr.Button(T("submit_correction"), elem_id="save-correction")
                    fb_status = gr.Markdown(elem_id="feedback-status")
            with gr.Tab(T("documents"), id="documents"):
                files = gr.File(label=T("upload"), file_count="multiple",
                                file_types=[".pdf", ".md", ".markdown", ".txt"], elem_id="upload")
                ingest_btn = gr.Button(T("ingest"), variant="primary", elem_id="ingest")
                ingest_status = gr.Markdown(elem_id="ingest-status")
                ingest_results = gr.HTML(elem_id="ingest-results")
                refresh_btn = gr.Button(T("refresh"), size="sm")
                docs = gr.Dataframe(headers=["Name", "Status", "Pages", "Chunks", "Added", "Note"],
                                    interactive=False, wrap=True, elem_id="documents")
                with gr.Row():
                    doc_pick = gr.Dropdown(label=T("document"), choices=[], elem_id="doc-select", scale=4)
                    doc_delete_btn = gr.Button(T("delete_document"), variant="stop", elem_id="delete-doc", scale=1)
                doc_status = gr.Markdown(elem_id="doc-status")
            with gr.Tab(T("bad_cases"), id="bad-cases"):
                gr.Markdown(T("bad_cases_help"))
                export_btn = gr.Button(T("export"), elem_id="export")
                export_file = gr.File(label="JSONL", interactive=False, elem_id="export-file")
                export_status = gr.Markdown()

        # -- load: everything comes from the database, so a reload or a restart loses nothing ----
        def on_load(request: gr.Request):
            user = _user(request)
            names = kb_choices()
            conversations = service.conversations.list(user)
            cid, messages, ids, kb_value = "", [], [], (names[0] if names else None)
            if conversations:
                c = conversations[0]
                cid = c.id
                messages, ids = chat_messages(service.conversations.messages(c.id, user))
                if c.kb_name in names:
                    kb_value = c.kb_name
            last_sources = ""
            for m in reversed(service.conversations.messages(cid, user) if cid else []):
                if m.role == "assistant":
                    last_sources = sources_html(m.sources, request, bool(m.meta.get("refused")))
                    break
            return (gr.update(choices=names, value=kb_value),
                    "" if names else text(request, "no_kb"),
                    gr.update(choices=conv_choices(user), value=cid or None),
                    messages, cid, ids, last_sources,
                    docs_table(kb_value, request), gr.update(choices=doc_choices(kb_value), value=None),
                    _last_answer(ids, messages), _target_text(messages, request))

        def _last_answer(ids: list[str], messages: list[dict]) -> str:
            for mid, m in zip(reversed(ids), reversed(messages)):
                if m["role"] == "assistant":
                    return mid
            return ""

        def _target_text(messages: list[dict], request) -> str:  # noqa: ANN001
            for m in reversed(messages):
                if m["role"] == "assistant":
                    snippet = " ".join(str(m["content"]).split())[:80]
                    return text(request, "feedback_on", answer=snippet)
            return ""

        demo.load(on_load, None, [kb, kb_status, convs, chatbot, conv_id, msg_ids, sources, docs, doc_pick,
                                  target, target_md])

        # -- knowledge bases --------------------------------------------------------------------
        def on_kb_change(name: str | None, cid: str, request: gr.Request):
            if cid and name:
                try:
                    service.conversations.set_kb(cid, name, _user(request))
                except RagkbError:
                    pass
            return docs_table(name, request), gr.update(choices=doc_choices(name), value=None)

        kb.input(on_kb_change, [kb, conv_id], [docs, doc_pick])

        def on_create(name: str, request: gr.Request):
            try:
                created = service.create_kb(name or "")
            except RagkbError as exc:
                return gr.update(), f"⚠️ {exc}", gr.update(), [], gr.update()
            return (gr.update(choices=kb_choices(), value=created.name), text(request, "created", name=created.name),
                    "", [], gr.update(choices=[], value=None))

        create_btn.click(on_create, [new_kb], [kb, kb_status, new_kb, docs, doc_pick])
        new_kb.submit(on_create, [new_kb], [kb, kb_status, new_kb, docs, doc_pick])

        def on_rename(current: str | None, new_name: str, request: gr.Request):
            if not current:
                return gr.update(), text(request, "select_kb"), gr.update()
            try:
                renamed = service.rename_kb(current, new_name or "")
            except RagkbError as exc:
                return gr.update(), f"⚠️ {exc}", gr.update()
            return gr.update(choices=kb_choices(), value=renamed.name), text(request, "renamed", name=renamed.name), ""

        rename_btn.click(on_rename, [kb, rename_to], [kb, kb_status, rename_to])

        def on_delete(current: str | None, confirmed: bool, request: gr.Request):
            if not current:
                return gr.update(), text(request, "select_kb"), gr.update(), gr.update(), gr.update()
            if not confirmed:
                return gr.update(), text(request, "confirm_first", name=current), gr.update(), gr.update(), gr.update()
            try:
                service.delete_kb(current)
            except RagkbError as exc:
                return gr.update(), f"⚠️ {exc}", gr.update(), gr.update(), gr.update()
            names = kb_choices()
            value = names[0] if names else None
            return (gr.update(choices=names, value=value), text(request, "deleted", name=current), False,
                    docs_table(value, request), gr.update(choices=doc_choices(value), value=None))

        delete_btn.click(on_delete, [kb, confirm], [kb, kb_status, confirm, docs, doc_pick])

        # -- documents --------------------------------------------------------------------------
        def on_ingest(name: str | None, paths, request: gr.Request, progress=gr.Progress()):  # noqa: ANN001
            if not name:
                yield text(request, "select_kb"), gr.update(), gr.update(), gr.update(), gr.update()
                return
            if not paths:
                yield text(request, "no_files"), gr.update(), gr.update(), gr.update(), gr.update()
                return
            uploads = [Upload(Path(p), safe_display_name(Path(p).name)) for p in paths]
            events: queue.Queue = queue.Queue()
            outcome: dict = {}

            def work() -> None:
                try:
                    outcome["summary"] = service.ingest_uploads(name, uploads, progress=events.put)
                except Exception as exc:  # reported below; the UI never crashes
                    outcome["error"] = exc
                finally:
                    events.put(None)

            threading.Thread(target=work, daemon=True, name="ragkb-ui-ingest").start()
            results = []
            progress(0, desc=text(request, "ingesting"))
            while True:
                ev = events.get()
                if ev is None:
                    break
                n = max(ev.file_total, 1)
                where = text(request, "file_n", i=max(ev.file_index, 1), n=n)
                if ev.stage == "file":
                    progress((ev.file_index - 1) / n, desc=f"{where}: {ev.name} — {text(request, 'reading')}")
                elif ev.stage == "chunks" and ev.total:
                    frac = (ev.file_index - 1 + ev.done / ev.total) / n
                    progress(frac, desc=f"{where}: {ev.name} — {text(request, 'embedding', done=ev.done, total=ev.total)}")
                elif ev.stage == "index":
                    progress(0.99, desc=text(request, "indexing"))
                elif ev.stage == "done" and ev.result is not None:
                    results.append(ev.result)
                    yield (f"{text(request, 'ingesting')}… {where}", result_html(results, request),
                           gr.update(), gr.update(), gr.update())
            if "error" in outcome:
                yield f"⚠️ {outcome['error']}", result_html(results, request), gr.update(), gr.update(), gr.update()
                return
            summary = outcome["summary"]
            status = text(request, "summary", ok=len(summary.ingested), skipped=len(summary.skipped),
                          failed=len(summary.failed))
            yield (status, result_html(summary.results, request), docs_table(name, request),
                   gr.update(choices=doc_choices(name), value=None), gr.update(value=None, interactive=True))

        ingest_btn.click(on_ingest, [kb, files], [ingest_status, ingest_results, docs, doc_pick, files],
                         concurrency_limit=1, concurrency_id="ingest", show_progress_on=[ingest_status])

        def on_refresh(name: str | None, request: gr.Request):
            return docs_table(name, request), gr.update(choices=doc_choices(name))

        refresh_btn.click(on_refresh, [kb], [docs, doc_pick])

        def on_doc_delete(name: str | None, doc: str | None, request: gr.Request):
            if not name or not doc:
                return text(request, "select_doc"), gr.update(), gr.update()
            try:
                row = service.delete_document(name, doc)
            except RagkbError as exc:
                return f"⚠️ {exc}", gr.update(), gr.update()
            return (text(request, "doc_deleted", name=row.filename), docs_table(name, request),
                    gr.update(choices=doc_choices(name), value=None))

        doc_delete_btn.click(on_doc_delete, [kb, doc_pick], [doc_status, docs, doc_pick])

        # -- chat ---------------------------------------------------------------------------------
        def on_send(message: str, history: list, cid: str, ids: list, name: str | None, request: gr.Request):
            user = _user(request)
            message = (message or "").strip()
            history = list(history or [])
            ids = list(ids or [])
            if not message:
                yield history, "", gr.update(), cid, ids, gr.update(), gr.update(), gr.update(), gr.update()
                return
            if not name:
                yield history, message, text(request, "select_kb"), cid, ids, gr.update(), gr.update(), gr.update(), gr.update()
                return
            history.append({"role": "user", "content": message})
            history.append({"role": "assistant", "content": "…"})
            ids += ["", ""]
            yield history, "", "", cid, ids, gr.update(), gr.update(), gr.update(), ""
            started = time.perf_counter()
            answer, refused, srcs = "", False, []
            try:
                for ev in service.chat(cid or None, name, message, user=user):
                    if ev.type == "conversation":
                        cid = ev.data["conversation_id"]
                        ids[-2] = ev.data["question_id"]
                        yield history, "", "", cid, ids, gr.update(choices=conv_choices(user), value=cid), \
                            gr.update(), gr.update(), gr.update()
                    elif ev.type == "status":
                        if not answer:
                            history[-1] = {"role": "assistant", "content": f"_{ev.text}…_"}
                            yield history, "", "", cid, ids, gr.update(), gr.update(), gr.update(), gr.update()
                    elif ev.type == "token":
                        answer += ev.text
                        history[-1] = {"role": "assistant", "content": answer}
                        yield history, "", gr.update(), cid, ids, gr.update(), gr.update(), gr.update(), gr.update()
                    elif ev.type == "error":
                        answer = (answer + "\n\n" if answer else "") + f"{text(request, 'model_error')}: {ev.text}"
                        history[-1] = {"role": "assistant", "content": answer}
                    elif ev.type == "sources":
                        srcs = [s.as_dict() for s in ev.sources]
                    elif ev.type == "done":
                        refused = bool(ev.data.get("refused"))
                        ids[-1] = ev.data.get("message_id", "")
                        flags = [text(request, "unsupported_claim", cites="".join(f"[{n}]" for n in c["cites"]),
                                      missing="、".join(c["missing"]), sentence=c["sentence"][:120])
                                 for c in ev.data.get("unsupported_claims", [])]
                        if flags:  # never shown as if the source supported it
                            history[-1] = {"role": "assistant", "content": answer + "\n\n" + "\n\n".join(flags)}
            except RagkbError as exc:
                history[-1] = {"role": "assistant", "content": f"{text(request, 'error')}: {exc}"}
                yield history, "", "", cid, ids, gr.update(), gr.update(), gr.update(), f"⚠️ {exc}"
                return
            snippet = " ".join(answer.split())[:80]
            yield (history, "", sources_html(srcs, request, refused), cid, ids,
                   gr.update(choices=conv_choices(user), value=cid or None), ids[-1],
                   text(request, "feedback_on", answer=snippet),
                   text(request, "answered", seconds=f"{time.perf_counter() - started:.1f}", n=len(srcs)))

        chat_out = [chatbot, question, sources, conv_id, msg_ids, convs, target, target_md, answer_meta]
        send.click(on_send, [question, chatbot, conv_id, msg_ids, kb], chat_out, concurrency_id="chat")
        question.submit(on_send, [question, chatbot, conv_id, msg_ids, kb], chat_out, concurrency_id="chat")

        # -- conversations ------------------------------------------------------------------------
        def on_new_conversation(request: gr.Request):
            return [], "", [], "", gr.update(value=None), "", ""

        new_conv_btn.click(on_new_conversation, None, [chatbot, conv_id, msg_ids, sources, convs, target, target_md])
        # The chatbot's own "clear" button starts a new conversation; the old one stays in the list.
        chatbot.clear(on_new_conversation, None, [chatbot, conv_id, msg_ids, sources, convs, target, target_md])

        def on_pick_conversation(cid: str | None, request: gr.Request):
            user = _user(request)
            if not cid:
                return gr.update(), gr.update(), gr.update(), gr.update(), gr.update(), gr.update(), gr.update(), \
                    gr.update(), gr.update(), gr.update()
            try:
                conv = service.conversations.get(cid, user)
                stored = service.conversations.messages(cid, user)
            except RagkbError as exc:
                return gr.update(), gr.update(), gr.update(), gr.update(), f"⚠️ {exc}", gr.update(), gr.update(), \
                    gr.update(), gr.update(), gr.update()
            messages, ids = chat_messages(stored)
            last = next((m for m in reversed(stored) if m.role == "assistant"), None)
            names = kb_choices()
            kb_value = conv.kb_name if conv.kb_name in names else gr.update()
            kb_name = conv.kb_name if conv.kb_name in names else None
            return (messages, cid, ids,
                    sources_html(last.sources, request, bool(last.meta.get("refused"))) if last else "",
                    "", kb_value, conv.title, _last_answer(ids, messages), _target_text(messages, request),
                    docs_table(kb_name, request) if kb_name else gr.update())

        convs.input(on_pick_conversation, [convs],
                    [chatbot, conv_id, msg_ids, sources, conv_status, kb, conv_title, target, target_md, docs])

        def on_rename_conversation(cid: str, title: str, request: gr.Request):
            user = _user(request)
            if not cid:
                return text(request, "no_conversation"), gr.update()
            try:
                service.conversations.rename(cid, title or "", user)
            except RagkbError as exc:
                return f"⚠️ {exc}", gr.update()
            return "", gr.update(choices=conv_choices(user), value=cid)

        conv_rename_btn.click(on_rename_conversation, [conv_id, conv_title], [conv_status, convs])

        def on_delete_conversation(cid: str, request: gr.Request):
            user = _user(request)
            if not cid:
                return text(request, "no_conversation"), gr.update(), gr.update(), gr.update(), gr.update(), gr.update()
            try:
                service.conversations.delete(cid, user)
            except RagkbError as exc:
                return f"⚠️ {exc}", gr.update(), gr.update(), gr.update(), gr.update(), gr.update()
            return (text(request, "conversation_deleted"), gr.update(choices=conv_choices(user), value=None),
                    [], "", [], "")

        conv_delete_btn.click(on_delete_conversation, [conv_id],
                              [conv_status, convs, chatbot, conv_id, msg_ids, sources])

        # -- feedback -----------------------------------------------------------------------------
        def on_like(ids: list, data: gr.LikeData, request: gr.Request):
            index = data.index if isinstance(data.index, int) else (data.index[0] if data.index else 0)
            mid = ids[index] if ids and 0 <= index < len(ids) else ""
            if not mid:
                return text(request, "no_answer_to_rate"), gr.update(), gr.update()
            rating = 1 if data.liked is True else (-1 if data.liked is False else None)
            try:
                service.feedback(mid, rating, None, _user(request))
            except RagkbError as exc:
                return f"⚠️ {exc}", gr.update(), gr.update()
            answer = " ".join(str(data.value).split())[:80] if data.value else ""
            return text(request, "feedback_saved"), mid, text(request, "feedback_on", answer=answer)

        chatbot.like(on_like, [msg_ids], [fb_status, target, target_md])

        def rate(value: int):
            def handler(mid: str, note: str, request: gr.Request):
                if not mid:
                    return text(request, "no_answer_to_rate"), gr.update()
                try:
                    service.feedback(mid, value, note, _user(request))
                except RagkbError as exc:
                    return f"⚠️ {exc}", gr.update()
                return text(request, "feedback_saved"), ""
            return handler

        up_btn.click(rate(1), [target, comment], [fb_status, comment])
        down_btn.click(rate(-1), [target, comment], [fb_status, comment])

        def on_correct(mid: str, answer: str, request: gr.Request):
            if not mid:
                return text(request, "no_answer_to_rate"), gr.update()
            if not (answer or "").strip():
                return text(request, "empty_correction"), gr.update()
            try:
                service.correct(mid, answer, _user(request))
                _, _, kb_name = service.conversations.question_for(mid, _user(request))
            except RagkbError as exc:
                return f"⚠️ {exc}", gr.update()
            return text(request, "correction_saved", kb=kb_name), ""

        correct_btn.click(on_correct, [target, correction], [fb_status, correction])

        def on_export(request: gr.Request):
            # One user's own cases when login is on; everything when it is off (single user).
            user = _user(request)
            data = service.bad_cases_jsonl(user if service.settings.user_list() else None)
            out = Path(tempfile.mkdtemp(prefix="ragkb-export-")) / "ragkb-bad-cases.jsonl"
            out.write_text(data, encoding="utf-8")
            return str(out), text(request, "exported", n=data.count("\n"))

        export_btn.click(on_export, None, [export_file, export_status])

    return demo


def ui_launch_kwargs(service: RagkbService) -> dict:
    """Arguments for mounting the UI: login, upload limit, language tables, theme."""
    users = service.settings.user_list()
    return {
        "auth": users or None,
        "max_file_size": f"{int(service.settings.max_file_mb)}mb",
        "i18n": i18n(),
        "css": CSS,
        # System fonts only: the default theme would make the browser fetch Google Fonts.
        "theme": gr.themes.Soft(font=["system-ui", "Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", "sans-serif"],
                                font_mono=["ui-monospace", "Noto Sans Mono CJK SC", "monospace"]),
    }
