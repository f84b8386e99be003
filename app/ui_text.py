"""Web UI text in English and Chinese.

Labels use Gradio's I18n (the browser's language picks the table); text produced by handlers
(results, errors) uses `text(request, key)` with the browser's Accept-Language.
"""

from __future__ import annotations

EN = {
    "kb": "Knowledge base",
    "no_kb": "No knowledge base yet: create one below.",
    "manage_kb": "Manage knowledge bases",
    "new_kb": "New knowledge base name",
    "create": "Create",
    "rename_to": "Rename the selected knowledge base to",
    "rename": "Rename",
    "confirm_delete": "Yes, delete the selected knowledge base and all its documents",
    "delete_kb": "Delete knowledge base",
    "conversations": "Conversations",
    "new_conversation": "New conversation",
    "conversation_title": "Conversation title",
    "rename_conversation": "Rename conversation",
    "delete_conversation": "Delete conversation",
    "chat": "Chat",
    "question": "Ask a question about the selected knowledge base…",
    "send": "Send",
    "sources": "Sources",
    "feedback": "Feedback and corrections",
    "comment": "Comment (optional)",
    "helpful": "👍 Helpful",
    "not_helpful": "👎 Not helpful",
    "correct_answer": "The right answer (used for similar questions from now on)",
    "submit_correction": "Save correction",
    "documents": "Documents",
    "upload": "Upload PDF, Markdown or text files (drag and drop, several at once)",
    "ingest": "Add to knowledge base",
    "document": "Document",
    "delete_document": "Delete document",
    "refresh": "Refresh",
    "bad_cases": "Evaluation set",
    "bad_cases_help": "Answers marked not helpful and user corrections, as JSONL for `ragkb eval cases`.",
    "export": "Export bad cases (JSONL)",
    # handler text
    "created": "Created knowledge base “{name}”.",
    "renamed": "Renamed to “{name}”.",
    "deleted": "Deleted knowledge base “{name}”.",
    "confirm_first": "Tick the confirmation box first: deleting removes every document of “{name}”.",
    "select_kb": "Select a knowledge base first.",
    "no_files": "Choose one or more files first.",
    "ingesting": "Ingesting",
    "file_n": "file {i}/{n}",
    "reading": "reading",
    "embedding": "embedding chunks {done}/{total}",
    "indexing": "updating the keyword index",
    "result_ingested": "ingested",
    "result_replaced": "replaced (new version)",
    "result_skipped": "skipped",
    "result_failed": "failed",
    "pages_chunks": "{pages} pages, {chunks} chunks",
    "chunks_only": "{chunks} chunks",
    "summary": "{ok} ingested, {skipped} skipped, {failed} failed",
    "doc_deleted": "Deleted “{name}”.",
    "select_doc": "Select a document first.",
    "no_answer_to_rate": "Ask a question first: feedback applies to an answer.",
    "feedback_saved": "Thanks: feedback saved.",
    "correction_saved": "Correction saved: similar questions in “{kb}” will use it.",
    "feedback_on": "Feedback on the answer: “{answer}”",
    "empty_correction": "Write the right answer first.",
    "model_error": "⚠️ Model error",
    "error": "⚠️ Error",
    "user_correction": "user correction",
    "page": "page",
    "no_sources": "No sources: the knowledge base does not contain the answer.",
    "col_name": "Name", "col_status": "Status", "col_pages": "Pages", "col_chunks": "Chunks", "col_added": "Added",
    "col_note": "Note",
    "conversation_deleted": "Conversation deleted.",
    "no_conversation": "Select a conversation first.",
    "exported": "{n} bad cases exported.",
    "answered": "Answered in {seconds} s · {n} sources",
    "unsupported_claim": "⚠️ Not found in the cited source {cites}: {missing} — check this sentence: “{sentence}”",
}

ZH = {
    "kb": "知识库",
    "no_kb": "还没有知识库：请在下方新建。",
    "manage_kb": "管理知识库",
    "new_kb": "新知识库名称",
    "create": "新建",
    "rename_to": "把当前知识库重命名为",
    "rename": "重命名",
    "confirm_delete": "确认删除当前知识库及其全部文档",
    "delete_kb": "删除知识库",
    "conversations": "对话",
    "new_conversation": "新对话",
    "conversation_title": "对话标题",
    "rename_conversation": "重命名对话",
    "delete_conversation": "删除对话",
    "chat": "问答",
    "question": "针对当前知识库提问……",
    "send": "发送",
    "sources": "来源",
    "feedback": "反馈与更正",
    "comment": "评论（可选）",
    "helpful": "👍 有帮助",
    "not_helpful": "👎 没帮助",
    "correct_answer": "正确答案（今后类似问题会使用）",
    "submit_correction": "保存更正",
    "documents": "文档",
    "upload": "上传 PDF、Markdown 或文本文件（可拖放，可多选）",
    "ingest": "加入知识库",
    "document": "文档",
    "delete_document": "删除文档",
    "refresh": "刷新",
    "bad_cases": "评测集",
    "bad_cases_help": "标记为没帮助的回答和用户更正，导出为 JSONL，可用于 `ragkb eval cases` 重新评测。",
    "export": "导出问题案例（JSONL）",
    "created": "已新建知识库“{name}”。",
    "renamed": "已重命名为“{name}”。",
    "deleted": "已删除知识库“{name}”。",
    "confirm_first": "请先勾选确认：删除会移除“{name}”的全部文档。",
    "select_kb": "请先选择知识库。",
    "no_files": "请先选择文件。",
    "ingesting": "正在导入",
    "file_n": "第 {i}/{n} 个文件",
    "reading": "读取中",
    "embedding": "向量化 {done}/{total} 个片段",
    "indexing": "更新关键词索引",
    "result_ingested": "已导入",
    "result_replaced": "已替换为新版本",
    "result_skipped": "已跳过",
    "result_failed": "失败",
    "pages_chunks": "{pages} 页，{chunks} 个片段",
    "chunks_only": "{chunks} 个片段",
    "summary": "导入 {ok} 个，跳过 {skipped} 个，失败 {failed} 个",
    "doc_deleted": "已删除“{name}”。",
    "select_doc": "请先选择文档。",
    "no_answer_to_rate": "请先提问：反馈针对某个回答。",
    "feedback_saved": "谢谢，反馈已保存。",
    "correction_saved": "更正已保存：“{kb}”中的类似问题会使用它。",
    "feedback_on": "反馈对象：“{answer}”",
    "empty_correction": "请先填写正确答案。",
    "model_error": "⚠️ 模型错误",
    "error": "⚠️ 错误",
    "user_correction": "用户更正",
    "page": "第",
    "no_sources": "没有来源：知识库中没有答案。",
    "col_name": "名称", "col_status": "状态", "col_pages": "页数", "col_chunks": "片段", "col_added": "添加时间",
    "col_note": "备注",
    "conversation_deleted": "对话已删除。",
    "no_conversation": "请先选择对话。",
    "exported": "已导出 {n} 条问题案例。",
    "answered": "用时 {seconds} 秒 · {n} 个来源",
    "unsupported_claim": "⚠️ 引用的来源 {cites} 中没有找到：{missing}，请核实这句话：“{sentence}”",
}


def i18n():
    import gradio as gr

    return gr.I18n(en=EN, zh=ZH, **{"zh-CN": ZH, "zh-TW": ZH})


def lang_of(request) -> str:  # noqa: ANN001
    header = ""
    try:
        header = (request.headers.get("accept-language") or "") if request is not None else ""
    except Exception:
        header = ""
    first = header.split(",")[0].strip().lower()
    return "zh" if first.startswith("zh") else "en"


def text(request, key: str, **kw) -> str:  # noqa: ANN001
    table = ZH if lang_of(request) == "zh" else EN
    return table.get(key, EN.get(key, key)).format(**kw)
