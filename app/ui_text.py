"""Web UI text in English and Chinese.

Labels use Gradio's I18n (the browser's language picks the table); text produced by handlers
(results, errors) uses `text(request, key)` with the browser's Accept-Language.
"""

from __future__ import annotations

import re

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
    "upload": "Upload PDF, Word (.docx), HTML, Markdown or text files (drag and drop, several at once)",
    "ingest": "Add to knowledge base",
    "document": "Document",
    "delete_document": "Delete document",
    "refresh": "Refresh",
    "bad_cases": "Evaluation set",
    "bad_cases_help": "Answers marked not helpful and user corrections, as JSONL for `ragkb eval cases`.",
    "export": "Export bad cases (JSONL)",
    "source_preview": "Source preview",
    "cited_source": "Cited source",
    "no_preview": "No preview: {why}",
    "no_highlight": "The passage could not be located on this page (e.g. a page read by OCR): the whole page is shown.",
    "retrieval_test": "Retrieval test",
    "retrieval_help": "What the assistant would see for a question: the ranked chunks, both search legs' ranks, and whether the answer gate keeps each one (and why).",
    "rt_query": "Question or search words",
    "rt_run": "Test retrieval",
    "rt_empty": "Type a question first.",
    "rt_none": "No chunk matches.",
    "rt_rank": "#", "rt_where": "File · page · section", "rt_score": "Fused score", "rt_bm25": "BM25 rank",
    "rt_dense": "Dense rank", "rt_gate": "Answer gate", "rt_text": "Text",
    "rt_in_prompt": "in the prompt", "rt_kept": "kept (beyond the prompt's blocks)", "rt_dropped": "dropped",
    "doc_chunks": "Chunks of the selected document",
    "chunk_filter": "Search within the chunks",
    "chunk_pick": "Chunk",
    "disable_chunk": "Disable chunk",
    "enable_chunk": "Enable chunk",
    "chunk_disabled": "Disabled: chunk {n} is no longer searched or used in answers.",
    "chunk_enabled": "Enabled: chunk {n} is searched again.",
    "select_chunk": "Select a document and a chunk first.",
    "n_chunks": "{n} chunk(s)",
    "disabled": "disabled",
    "col_name": "Name", "col_status": "Status", "col_pages": "Pages", "col_chunks": "Chunks", "col_size": "Size",
    "col_language": "Language", "col_model": "Embedding model", "col_added": "Added", "col_note": "Note",
    "col_index": "#", "col_page": "Page", "col_section": "Section", "col_length": "Length", "col_text": "Text",
    "why_cov": "{cov:.0%} of the question's topic words ({op} {min:.0%})",
    "why_dense": "dense similarity {sim:.2f} ({op} {min:.2f})",
    "why_no_dense": "dense similarity not counted: the embedding model does not serve this language",
    "why_top": "in the prompt all the same: the best-ranked chunk goes in whenever another chunk is kept",
    "index_section": "Embedding model and index",
    "kb_older_model": "Built with an older embedding model ({model}): see Documents › Embedding model and index.",
    "index_model": "Embedding model: **{model}** (dimension {dim}).",
    "index_older": "Built with {model}, an older model; new knowledge bases use {default}, which understands Chinese and English alike. Build a new index with it below: this knowledge base keeps answering from its current index until you switch.",
    "index_new_model": "Model of the new index",
    "index_build": "Build new index",
    "index_switch": "Switch to the new index",
    "index_discard": "Discard the new index",
    "index_building": "Building the new index with {model}: {done}/{total} chunks (the current index keeps answering).",
    "index_stopped": "A new index with {model} stopped at {done}/{total} chunks: build again to resume.",
    "index_failed": "Building the new index with {model} failed at {done}/{total} chunks: {error}. Build again to resume.",
    "index_built": "New index with {model} built ({total} chunks). Read the comparison, then switch or discard it.",
    "index_switched": "Switched: this knowledge base now answers from {model}; the old index is deleted.",
    "index_discarded": "The new index is discarded; the knowledge base keeps its current one.",
    "cmp_question": "Question", "cmp_kind": "From", "cmp_expected": "Expected passage", "cmp_before": "Rank now",
    "cmp_after": "Rank with the new index", "cmp_overlap": "Top-5 overlap",
    "cmp_kind_correction": "your correction", "cmp_kind_asked": "asked before", "cmp_kind_disliked": "disliked answer",
    "cmp_kind_sample": "sample sentence",
    "cmp_summary": "{n} questions; expected passage in the top 5: {found_before}/{expected} now, {found_after}/{expected} with the new index; the two top 5s share {overlap}.",
    "status_ready": "ready", "status_failed": "failed", "status_ingesting": "ingesting", "status_deleting": "deleting",
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
    "ocr_page": "reading scanned page {done}/{total} (OCR)",
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
    "conversation_deleted": "Conversation deleted.",
    "no_conversation": "Select a conversation first.",
    "exported": "{n} bad cases exported.",
    "answered": "Answered in {seconds} s · {n} sources",
    "unsupported_claim": "⚠️ Not found in the cited source {cites}: {missing} — check this sentence: “{sentence}”",
    "uncited_answer": "⚠️ This answer cites no passage of the knowledge base and most of its words are not in the "
                      "passages found: it probably comes from the model's own knowledge, not from your documents.",
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
    "upload": "上传 PDF、Word（.docx）、HTML、Markdown 或文本文件（可拖放，可多选）",
    "ingest": "加入知识库",
    "document": "文档",
    "delete_document": "删除文档",
    "refresh": "刷新",
    "bad_cases": "评测集",
    "bad_cases_help": "标记为没帮助的回答和用户更正，导出为 JSONL，可用于 `ragkb eval cases` 重新评测。",
    "export": "导出问题案例（JSONL）",
    "source_preview": "来源预览",
    "cited_source": "引用的来源",
    "no_preview": "无法预览：{why}",
    "no_highlight": "未能在此页定位引用的段落（例如经 OCR 识别的页面），显示整页。",
    "retrieval_test": "检索测试",
    "retrieval_help": "助手针对一个问题会看到什么：排序后的片段、两路检索各自的名次，以及回答闸门是否保留每个片段（和原因）。",
    "rt_query": "问题或检索词",
    "rt_run": "测试检索",
    "rt_empty": "请先输入问题。",
    "rt_none": "没有匹配的片段。",
    "rt_rank": "#", "rt_where": "文件 · 页 · 章节", "rt_score": "融合得分", "rt_bm25": "BM25 名次",
    "rt_dense": "向量名次", "rt_gate": "回答闸门", "rt_text": "文本",
    "rt_in_prompt": "进入提示词", "rt_kept": "保留（超出提示词的片段数）", "rt_dropped": "丢弃",
    "doc_chunks": "所选文档的片段",
    "chunk_filter": "在片段中搜索",
    "chunk_pick": "片段",
    "disable_chunk": "停用片段",
    "enable_chunk": "启用片段",
    "chunk_disabled": "已停用：第 {n} 个片段不再参与检索和回答。",
    "chunk_enabled": "已启用：第 {n} 个片段重新参与检索。",
    "select_chunk": "请先选择文档和片段。",
    "n_chunks": "{n} 个片段",
    "disabled": "已停用",
    "col_name": "名称", "col_status": "状态", "col_pages": "页数", "col_chunks": "片段", "col_size": "大小",
    "col_language": "语言", "col_model": "嵌入模型", "col_added": "添加时间", "col_note": "备注",
    "col_index": "#", "col_page": "页", "col_section": "章节", "col_length": "长度", "col_text": "文本",
    "why_cov": "问题主题词覆盖 {cov:.0%}（{op} {min:.0%}）",
    "why_dense": "向量相似度 {sim:.2f}（{op} {min:.2f}）",
    "why_no_dense": "不计向量相似度：嵌入模型不支持这种语言",
    "why_top": "仍进入提示词：只要有其他片段被保留，排名第一的片段总会进入",
    "index_section": "嵌入模型与索引",
    "kb_older_model": "此知识库用较旧的嵌入模型（{model}）构建：见 文档 › 嵌入模型与索引。",
    "index_model": "嵌入模型：**{model}**（维度 {dim}）。",
    "index_older": "此知识库用较旧的模型 {model} 构建；新知识库使用 {default}，中英文都能理解。可在下方用它构建新索引：切换之前，此知识库继续用当前索引回答。",
    "index_new_model": "新索引的模型",
    "index_build": "构建新索引",
    "index_switch": "切换到新索引",
    "index_discard": "放弃新索引",
    "index_building": "正在用 {model} 构建新索引：{done}/{total} 个片段（当前索引照常回答）。",
    "index_stopped": "用 {model} 构建的新索引停在 {done}/{total} 个片段：再次构建即可继续。",
    "index_failed": "用 {model} 构建新索引失败（{done}/{total} 个片段）：{error}。再次构建即可继续。",
    "index_built": "用 {model} 构建的新索引已完成（{total} 个片段）。请查看对比，再决定切换或放弃。",
    "index_switched": "已切换：此知识库现在用 {model} 回答，旧索引已删除。",
    "index_discarded": "新索引已放弃，知识库继续使用当前索引。",
    "cmp_question": "问题", "cmp_kind": "来源", "cmp_expected": "应找到的段落", "cmp_before": "当前排名",
    "cmp_after": "新索引排名", "cmp_overlap": "前 5 重合",
    "cmp_kind_correction": "你的更正", "cmp_kind_asked": "以前问过", "cmp_kind_disliked": "点踩的回答",
    "cmp_kind_sample": "抽样句子",
    "cmp_summary": "共 {n} 个问题；应找到的段落在前 5：当前 {found_before}/{expected}，新索引 {found_after}/{expected}；两个前 5 重合 {overlap}。",
    "status_ready": "可用", "status_failed": "失败", "status_ingesting": "导入中", "status_deleting": "删除中",
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
    "ocr_page": "正在识别扫描页 {done}/{total}（OCR）",
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
    "conversation_deleted": "对话已删除。",
    "no_conversation": "请先选择对话。",
    "exported": "已导出 {n} 条问题案例。",
    "answered": "用时 {seconds} 秒 · {n} 个来源",
    "unsupported_claim": "⚠️ 引用的来源 {cites} 中没有找到：{missing}，请核实这句话：“{sentence}”",
    "uncited_answer": "⚠️ 这个回答没有引用知识库中的任何段落，其内容大多不在检索到的段落里：它可能来自模型自身的知识，而不是你的文档。",
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


# Notes the ingest writes in English (the CLI, the API and the stored document keep them so): a Chinese
# browser sees the common ones in Chinese. A note not listed here is shown as written.
_NOTES_ZH = [
    (re.compile(r"read (\d+) page\(s\) by OCR \(pages ([^)]*)\): check the text in the document's chunks"),
     "已用 OCR 识别 {0} 页（第 {1} 页）：请在文档的片段中核对识别出的文字"),
    (re.compile(r"(\d+) image\(s\) ignored: only text is searched"), "忽略了 {0} 张图片：只检索文字"),
    (re.compile(r"skipped pages ([^:]*): garbled text layer"), "跳过第 {0} 页：文字层是乱码"),
    (re.compile(r"skipped pages ([^:]*): no text layer \(scanned images\); "), "跳过第 {0} 页：没有文字层（扫描的图片）；"),
    (re.compile(r"to read such pages, install the OCR extra \(rapidocr-onnxruntime\): (.*), then add the file again"),
     "要读取这些页面，请安装 OCR 扩展（rapidocr-onnxruntime）：{0}，然后重新添加文件"),
    (re.compile(r"OCR is off \(RAGKB_OCR=false\): turn it on, or OCR the file \(e\.g\. ocrmypdf\) and add it again"),
     "OCR 已关闭（RAGKB_OCR=false）：请打开它，或先对文件做 OCR（如 ocrmypdf）再添加"),
    (re.compile(r"OCR found no text on them"), "OCR 在这些页面上没有识别出文字"),
]


# The chain's progress lines (rag.chain yields them in English for every face).
_STATUS_ZH = {
    "understanding the follow-up question": "正在理解追问",
    "searching with the question in the documents' language": "正在用文档的语言检索这个问题",
}


def status_text(request, status: str) -> str:  # noqa: ANN001
    """A progress line of the answer chain in the UI language."""
    return _STATUS_ZH.get(status, status) if lang_of(request) == "zh" else status


def note_text(request, note: str) -> str:  # noqa: ANN001
    """An ingest note (warning) in the UI language."""
    if not note or lang_of(request) != "zh":
        return note
    for pattern, zh in _NOTES_ZH:
        note = pattern.sub(lambda m, zh=zh: zh.format(*m.groups()), note)
    return note
