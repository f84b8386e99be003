"""The web UI's components, built once inside a gr.Blocks and handed to the handlers by name."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr


@dataclass
class Layout:
    # state
    conv_id: gr.State
    msg_ids: gr.State
    target: gr.State
    # sidebar: knowledge bases and conversations
    kb: gr.Dropdown
    kb_status: gr.Markdown
    new_kb: gr.Textbox
    create_btn: gr.Button
    rename_to: gr.Textbox
    rename_btn: gr.Button
    confirm: gr.Checkbox
    delete_btn: gr.Button
    new_conv_btn: gr.Button
    convs: gr.Radio
    conv_title: gr.Textbox
    conv_rename_btn: gr.Button
    conv_delete_btn: gr.Button
    conv_status: gr.Markdown
    # chat tab
    chatbot: gr.Chatbot
    question: gr.Textbox
    send: gr.Button
    answer_meta: gr.Markdown
    sources: gr.HTML
    src_pick: gr.Dropdown
    preview_image: gr.Image
    preview_text: gr.HTML
    target_md: gr.Markdown
    comment: gr.Textbox
    up_btn: gr.Button
    down_btn: gr.Button
    correction: gr.Textbox
    correct_btn: gr.Button
    fb_status: gr.Markdown
    # documents tab
    files: gr.File
    ingest_btn: gr.Button
    ingest_status: gr.Markdown
    ingest_results: gr.HTML
    refresh_btn: gr.Button
    docs: gr.Dataframe
    doc_pick: gr.Dropdown
    doc_delete_btn: gr.Button
    doc_status: gr.Markdown
    chunk_filter: gr.Textbox
    chunks_html: gr.HTML
    chunk_pick: gr.Dropdown
    disable_chunk_btn: gr.Button
    enable_chunk_btn: gr.Button
    chunk_status: gr.Markdown
    index_info: gr.Markdown
    index_model: gr.Dropdown
    index_build_btn: gr.Button
    index_status: gr.Markdown
    index_compare: gr.HTML
    index_switch_btn: gr.Button
    index_cancel_btn: gr.Button
    # retrieval test tab
    rt_query: gr.Textbox
    rt_k: gr.Slider
    rt_run: gr.Button
    rt_results: gr.HTML
    # who may do what (app.ui.members): shown by the user's role on the selected knowledge base
    owner_tools: gr.Column
    members_box: gr.Accordion
    members_md: gr.Markdown
    member_name: gr.Textbox
    member_role: gr.Dropdown
    grant_btn: gr.Button
    revoke_btn: gr.Button
    members_status: gr.Markdown
    editor_tools: gr.Column
    chunk_edit: gr.Row
    index_box: gr.Accordion
    # bad cases tab
    export_btn: gr.Button
    export_file: gr.File
    export_status: gr.Markdown


def build_layout(T, embedding_models: list[str] | None = None) -> Layout:  # noqa: ANN001  (T: the i18n table)
    """Must be called inside `with gr.Blocks():`. `embedding_models`: the choices for a new index, the default
    first."""
    embedding_models = embedding_models or []
    c: dict = {"conv_id": gr.State(""), "msg_ids": gr.State([]), "target": gr.State("")}
    with gr.Sidebar(open=True):
        gr.Markdown("## ragkb")
        c["kb"] = gr.Dropdown(label=T("kb"), choices=[], value=None, interactive=True, elem_id="kb-select",
                              allow_custom_value=False)
        c["kb_status"] = gr.Markdown(elem_id="kb-status")
        with gr.Accordion(T("manage_kb"), open=False, elem_id="kb-manage"):
            c["new_kb"] = gr.Textbox(label=T("new_kb"), elem_id="new-kb-name")
            c["create_btn"] = gr.Button(T("create"), elem_id="create-kb")
            with gr.Column(elem_id="kb-owner-tools") as c["owner_tools"]:
                c["rename_to"] = gr.Textbox(label=T("rename_to"), elem_id="rename-kb-name")
                c["rename_btn"] = gr.Button(T("rename"), elem_id="rename-kb")
                c["confirm"] = gr.Checkbox(label=T("confirm_delete"), value=False, elem_id="confirm-delete-kb")
                c["delete_btn"] = gr.Button(T("delete_kb"), variant="stop", elem_id="delete-kb")
        with gr.Accordion(T("members"), open=False, visible=False, elem_id="kb-members") as c["members_box"]:
            gr.Markdown(T("members_help"))
            c["members_md"] = gr.Markdown(elem_id="members-list")
            c["member_name"] = gr.Textbox(label=T("member_user"), elem_id="member-name")
            c["member_role"] = gr.Dropdown(label=T("member_role"), choices=["viewer", "editor", "owner"],
                                           value="viewer", elem_id="member-role")
            with gr.Row():
                c["grant_btn"] = gr.Button(T("grant"), elem_id="grant-member")
                c["revoke_btn"] = gr.Button(T("revoke"), elem_id="revoke-member")
            c["members_status"] = gr.Markdown(elem_id="members-status")
        c["new_conv_btn"] = gr.Button(T("new_conversation"), elem_id="new-conversation")
        c["convs"] = gr.Radio(label=T("conversations"), choices=[], value=None, elem_id="conversations")
        with gr.Accordion(T("conversation_title"), open=False):
            c["conv_title"] = gr.Textbox(label=T("conversation_title"), elem_id="conversation-title")
            c["conv_rename_btn"] = gr.Button(T("rename_conversation"), elem_id="rename-conversation")
            c["conv_delete_btn"] = gr.Button(T("delete_conversation"), variant="stop", elem_id="delete-conversation")
        c["conv_status"] = gr.Markdown(elem_id="conversation-status")

    with gr.Tabs():
        with gr.Tab(T("chat"), id="chat"):
            c["chatbot"] = gr.Chatbot(height=480, elem_id="chatbot", show_label=False, buttons=["copy"],
                                      sanitize_html=True, feedback_options=("Like", "Dislike"))
            with gr.Row():
                c["question"] = gr.Textbox(placeholder=T("question"), show_label=False, scale=8, lines=1,
                                           max_lines=6, elem_id="question")
                c["send"] = gr.Button(T("send"), variant="primary", scale=1, elem_id="send")
            c["answer_meta"] = gr.Markdown(elem_id="answer-meta")
            c["sources"] = gr.HTML(elem_id="sources")
            with gr.Accordion(T("source_preview"), open=False, elem_id="source-preview"):
                c["src_pick"] = gr.Dropdown(label=T("cited_source"), choices=[], value=None, elem_id="preview-select")
                c["preview_image"] = gr.Image(show_label=False, interactive=False, visible=False, elem_id="preview-image",
                                              buttons=["fullscreen"])
                c["preview_text"] = gr.HTML(elem_id="preview-text")
            with gr.Accordion(T("feedback"), open=False, elem_id="feedback"):
                c["target_md"] = gr.Markdown(elem_id="feedback-target")
                c["comment"] = gr.Textbox(label=T("comment"), elem_id="feedback-comment")
                with gr.Row():
                    c["up_btn"] = gr.Button(T("helpful"), elem_id="thumbs-up")
                    c["down_btn"] = gr.Button(T("not_helpful"), elem_id="thumbs-down")
                c["correction"] = gr.Textbox(label=T("correct_answer"), lines=3, elem_id="correction")
                c["correct_btn"] = gr.Button(T("submit_correction"), elem_id="save-correction")
                c["fb_status"] = gr.Markdown(elem_id="feedback-status")
        with gr.Tab(T("documents"), id="documents"):
            with gr.Column(elem_id="editor-tools") as c["editor_tools"]:
                c["files"] = gr.File(label=T("upload"), file_count="multiple",
                                     file_types=[".pdf", ".md", ".markdown", ".txt", ".docx", ".html", ".htm"],
                                     elem_id="upload")
                c["ingest_btn"] = gr.Button(T("ingest"), variant="primary", elem_id="ingest")
            c["ingest_status"] = gr.Markdown(elem_id="ingest-status")
            c["ingest_results"] = gr.HTML(elem_id="ingest-results")
            c["refresh_btn"] = gr.Button(T("refresh"), size="sm")
            c["docs"] = gr.Dataframe(interactive=False, wrap=True, elem_id="documents")  # headers: by language
            with gr.Row():
                c["doc_pick"] = gr.Dropdown(label=T("document"), choices=[], elem_id="doc-select", scale=4)
                c["doc_delete_btn"] = gr.Button(T("delete_document"), variant="stop", elem_id="delete-doc", scale=1)
            c["doc_status"] = gr.Markdown(elem_id="doc-status")
            with gr.Accordion(T("doc_chunks"), open=False, elem_id="doc-chunks"):
                c["chunk_filter"] = gr.Textbox(label=T("chunk_filter"), elem_id="chunk-filter")
                c["chunks_html"] = gr.HTML(elem_id="chunks")
                with gr.Row() as c["chunk_edit"]:
                    c["chunk_pick"] = gr.Dropdown(label=T("chunk_pick"), choices=[], elem_id="chunk-select", scale=4)
                    c["disable_chunk_btn"] = gr.Button(T("disable_chunk"), elem_id="disable-chunk", scale=1)
                    c["enable_chunk_btn"] = gr.Button(T("enable_chunk"), elem_id="enable-chunk", scale=1)
                c["chunk_status"] = gr.Markdown(elem_id="chunk-status")
            with gr.Accordion(T("index_section"), open=False, elem_id="kb-index") as c["index_box"]:
                c["index_info"] = gr.Markdown(elem_id="index-info")
                with gr.Row():
                    c["index_model"] = gr.Dropdown(label=T("index_new_model"), choices=embedding_models,
                                                   value=embedding_models[0] if embedding_models else None,
                                                   allow_custom_value=True, elem_id="index-model", scale=4)
                    c["index_build_btn"] = gr.Button(T("index_build"), elem_id="index-build", scale=1)
                c["index_status"] = gr.Markdown(elem_id="index-status")
                c["index_compare"] = gr.HTML(elem_id="index-compare")
                with gr.Row():
                    c["index_switch_btn"] = gr.Button(T("index_switch"), variant="primary", visible=False,
                                                      elem_id="index-switch")
                    c["index_cancel_btn"] = gr.Button(T("index_discard"), visible=False, elem_id="index-discard")
        with gr.Tab(T("retrieval_test"), id="retrieval-test"):
            gr.Markdown(T("retrieval_help"))
            with gr.Row():
                c["rt_query"] = gr.Textbox(label=T("rt_query"), elem_id="rt-query", scale=6)
                c["rt_k"] = gr.Slider(1, 30, value=10, step=1, label="k", elem_id="rt-k", scale=2)
            c["rt_run"] = gr.Button(T("rt_run"), variant="primary", elem_id="rt-run")
            c["rt_results"] = gr.HTML(elem_id="rt-results")
        with gr.Tab(T("bad_cases"), id="bad-cases"):
            gr.Markdown(T("bad_cases_help"))
            c["export_btn"] = gr.Button(T("export"), elem_id="export")
            c["export_file"] = gr.File(label="JSONL", interactive=False, elem_id="export-file")
            c["export_status"] = gr.Markdown()
    return Layout(**c)
