"""The Gradio web UI: knowledge bases, uploads with progress, streaming chat with sources,
persistent conversations, feedback and corrections.

`layout` builds the components, `render` turns data into escaped HTML, and the handler groups
(`knowledge_bases`, `chat`, `feedback`, `workbench`: the retrieval test and a document's chunks, `preview`: a cited source's page with the
passage highlighted, `index`: the knowledge base's embedding model and the safe switch to another, `members`: what the user's role shows
and who holds which role) call only `RagkbService`, as the signed-in user (app.access), and return {component: value}.
"""

from __future__ import annotations

import gradio as gr

from app.services import RagkbService
from app.ui.chat import ChatHandlers
from app.ui.feedback import FeedbackHandlers
from app.ui.index import IndexHandlers
from app.ui.knowledge_bases import KnowledgeBaseHandlers
from app.ui.layout import build_layout
from app.ui.members import MemberHandlers
from app.ui.preview import PreviewHandlers
from app.ui.render import CSS
from app.ui.workbench import WorkbenchHandlers
from app.ui_text import i18n


def build_ui(service: RagkbService) -> gr.Blocks:
    with gr.Blocks(title="ragkb") as demo:
        c = build_layout(i18n(), service.embedding_models())
        ChatHandlers(service, c).wire(demo)
        KnowledgeBaseHandlers(service, c).wire()
        FeedbackHandlers(service, c).wire()
        WorkbenchHandlers(service, c).wire()
        PreviewHandlers(service, c).wire()
        IndexHandlers(service, c).wire()
        MemberHandlers(service, c).wire()
    return demo


def ui_launch_kwargs(service: RagkbService) -> dict:
    """Arguments for mounting the UI: login (RAGKB_USERS or `ragkb user`, when either exists at start), upload limit,
    language tables, theme."""
    return {
        "auth": service.login if service.login_required() else None,
        "max_file_size": f"{int(service.settings.max_file_mb)}mb",
        "i18n": i18n(),
        "css": CSS,
        # System fonts only: the default theme would make the browser fetch Google Fonts.
        "theme": gr.themes.Soft(font=["system-ui", "Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", "sans-serif"],
                                font_mono=["ui-monospace", "Noto Sans Mono CJK SC", "monospace"]),
    }
