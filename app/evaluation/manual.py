"""`ragkb eval answers <devset>.jsonl`: a user's session with one real manual, scored.

A manual dev set (app/evaluation/devsets) is questions written about a public PDF, each with its answers
(every element must appear in the reply; a list element is satisfied by any alternative) and the pages that
hold them; a question with no answers is out of scope (a world-knowledge question the manual cannot answer);
`follows` names the question a follow-up continues. The PDF is ingested by ragkb's pipeline and every question
is asked in one conversation, in file order, a follow-up right after the question it follows: as a user asks
them, so a self-contained question that gets glued to the previous one, or a needless rewrite call, shows.

Reported: answered right (contains the answers), right page cited, false refusals (answerable, refused by
the gate or by the model), refusals of out-of-scope questions and how many of those needed no model call,
follow-ups right, condense (rewrite) calls per turn, unsupported claims, seconds per question.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from rag.settings import Settings


def conversation_order(items: list[dict]) -> list[dict]:
    """File order, each follow-up moved right after the question it follows."""
    followers: dict[str, list[dict]] = {}
    for it in items:
        if it.get("follows"):
            followers.setdefault(it["follows"], []).append(it)
    out: list[dict] = []

    def add(it: dict) -> None:
        out.append(it)
        for f in followers.get(it["id"], []):
            add(f)

    for it in items:
        if not it.get("follows"):
            add(it)
    return out


# Held-out and dev sets about a PDF the distribution installs with a package (shared-mime-info, libtasn1-doc).
SYSTEM_PDFS = {"mime_spec": "/usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf",
               "libtasn1": "/usr/share/doc/libtasn1-doc/libtasn1.pdf",
               "debian_reference_zh": "/usr/share/debian-reference/debian-reference.zh-cn.pdf",
               "maint_guide_zh": "/usr/share/doc/maint-guide-zh-cn/maint-guide.zh-cn.pdf"}


def find_pdf(devset: Path, public: Path | None) -> Path:
    from app.evaluation.gate import MANUALS

    rel = MANUALS.get(devset.stem)
    candidates = [devset.with_suffix(".pdf")]  # a dev set of your own: its PDF beside it, same name
    if devset.stem in SYSTEM_PDFS:  # a manual the distribution installs
        candidates.append(Path(SYSTEM_PDFS[devset.stem]))
    if public and rel:
        candidates.append(public / rel)
    if rel:
        candidates.append(Path(__file__).resolve().parents[3] / "shared" / "eval" / "public" / rel)
    for c in candidates:
        if c.exists():
            return c
    raise FileNotFoundError(f"{devset}: its PDF ({rel or devset.with_suffix('.pdf').name}) was not found; put it "
                            "beside the dev set, or pass --public with the folder that holds pdf_ingest_dev")


# Dev sets about the distribution's own documentation: the Chinese man pages of shadow-utils and man-db (Debian's
# manpages-zh is not needed: these ship with the packages), rendered to text with `man -l` at evaluation time.
MAN_PAGES = {"manpages_zh": ("zh_CN", [
    "man1/passwd.1", "man1/chage.1", "man1/gpasswd.1", "man1/chsh.1", "man1/chfn.1", "man1/login.1", "man1/newgrp.1",
    "man1/man.1", "man1/apropos.1", "man1/whatis.1", "man5/shadow.5", "man5/login.defs.5", "man5/passwd.5",
    "man8/useradd.8", "man8/usermod.8", "man8/userdel.8", "man8/groupadd.8", "man8/chpasswd.8", "man8/groupdel.8",
    "man8/groupmod.8", "man8/nologin.8", "man8/vipw.8"])}


# Sets about documentation the distribution installs as HTML files, one per chapter (a user uploads them all).
SYSTEM_HTML = {"debian_faq_zh": ("/usr/share/doc/debian/FAQ/zh-cn", "debian-faq-zh-cn"),
               "python_tutorial": ("/usr/share/doc/python3/html/tutorial", "python3-doc"),
               "install_guide_zh": ("/usr/share/doc/installation-guide-amd64/zh_CN", "installation-guide-amd64"),
               "kicad_zh": ("/usr/share/doc/kicad/help/zh", "kicad-doc-zh")}


def find_documents(devset: Path, public: Path | None, workdir: Path) -> list[Path]:
    """The documents a manual dev set is about: its PDF, its HTML chapters, or its man pages rendered as text into
    `workdir`."""
    if devset.stem in SYSTEM_HTML:
        folder, package = SYSTEM_HTML[devset.stem]
        if not (found := sorted(Path(folder).glob("*.html"))):
            raise FileNotFoundError(f"{devset}: no HTML files in {folder} (apt-get install {package})")
        return found
    if devset.stem not in MAN_PAGES:
        return [find_pdf(devset, public)]
    import shutil
    import subprocess

    lang, pages = MAN_PAGES[devset.stem]
    if not shutil.which("man"):
        raise FileNotFoundError(f"{devset}: needs the `man` command to render its man pages")
    out = []
    for page in pages:
        src = Path("/usr/share/man") / lang / f"{page}.gz"
        if not src.exists():
            raise FileNotFoundError(f"{devset}: {src} is not installed (package shadow-utils / man-db, {lang})")
        text = subprocess.run(["man", "-l", str(src)], capture_output=True, text=True, check=True,
                              env={"LANG": "C.UTF-8", "MANWIDTH": "100", "PATH": "/usr/bin:/bin"}).stdout
        path = workdir / f"{Path(page).name}.txt"
        path.write_text(re.sub(r".\x08", "", text), encoding="utf-8")  # no overstrike (bold) left
        out.append(path)
    return out


def _right_source(item: dict, pages: set, files: set) -> bool:
    """The answer cites the gold page (PDF sets) or the gold file: a man page ("passwd.1" for passwd.1.txt) or an
    HTML chapter."""
    return bool(pages & set(item.get("pages", []))) or bool({f.removesuffix(".txt") for f in files} & set(item.get("files", [])))


def evaluate_manual(devset: Path, settings: Settings, public: Path | None = None, limit: int | None = None,
                    out_dir: Path | None = None, progress=print) -> dict:  # noqa: ANN001
    from app.evaluation.answers import (contains_answer, rule_effects, scratch_store, strip_citations,
                                        with_assembled_model)
    from app.services import RagkbService
    from ingest.pipeline import ingest_paths
    from rag.answer.prompts import is_refusal

    items = [json.loads(line) for line in devset.read_text(encoding="utf-8").splitlines() if line.strip()]
    items = conversation_order(items)[:limit] if limit else conversation_order(items)
    settings = with_assembled_model(settings)
    per_q: dict[str, dict] = {}
    with scratch_store(settings) as (store, tmp):
        service = RagkbService(store=store)
        try:
            docs = find_documents(devset, public, tmp)
            progress(f"[{devset.stem}] ingesting {', '.join(d.name for d in docs[:3])}{' …' if len(docs) > 3 else ''}")
            kb = devset.stem
            ingest_paths(store, kb, docs)
            history: list[tuple[str, str]] = []
            for n, it in enumerate(items, start=1):
                t0 = time.perf_counter()
                ans = service.answers.answer(kb, it["question"], history)
                seconds = time.perf_counter() - t0
                text = strip_citations(ans.text).strip()
                pages = {src.page for src in ans.sources if src.page}
                files = {Path(src.filename).name for src in ans.sources}
                answerable = bool(it["answers"])
                refused = ans.refused  # rag.answer.prompts.is_refusal, the one rule
                per_q[it["id"]] = {
                    "question": it["question"], "reply": ans.text[:600], "error": ans.error,
                    "answerable": answerable, "follow_up": bool(it.get("follows")), "turn": n,
                    "refused": refused, "model_called": "before_llm_ms" in ans.timings,
                    "contains": answerable and not refused and contains_answer(text, it["answers"]),
                    "right_page": answerable and _right_source(it, pages, files),
                    "condensed": "condense_ms" in ans.timings, "condense_ms": ans.timings.get("condense_ms"),
                    "standalone_question": ans.standalone_question,
                    "unsupported": bool(ans.unsupported_claims), "grounding": ans.grounding,
                    "memory": ans.from_memory,
                    "word_support": _word_support(service, ans, it["question"]),
                    "seconds": round(seconds, 2), "ttft_ms": ans.timings.get("ttft_ms"),
                    "prompt_tokens": ans.prompt_tokens,
                    # a gold answer in the evidence the model read: a miss with it is the model's, without it the
                    # evidence's (retrieval, the gate or the evidence cut)
                    "in_prompt": answerable and contains_answer("\n".join(ans.read), it["answers"])}
                row = per_q[it["id"]]
                row["right_and_page"] = row["contains"] and row["right_page"]
                row["rules_off"] = {}
                for a in getattr(ans, "applied", []):  # each check-stage rule that fired, scored as if it had not
                    off_refused = is_refusal(a["text"])
                    contains = answerable and not off_refused and contains_answer(strip_citations(a["text"]), it["answers"])
                    page = answerable and _right_source(it, set(a["pages"]), {Path(f).name for f in a["files"]})
                    row["rules_off"][a["rule"]] = {"contains": contains, "right_page": page, "refused": off_refused,
                                                   "right_and_page": contains and page}
                history += [("user", it["question"]), ("assistant", ans.text)]
                if n % 5 == 0 or n == len(items):
                    progress(f"[{devset.stem}] {n}/{len(items)} questions")
            served = service.answers.llm.model_in_use  # auto may have picked the 0.5B
        finally:
            service.close()
    rows = list(per_q.values())
    ans_rows = [r for r in rows if r["answerable"]]
    oos = [r for r in rows if not r["answerable"]]
    fups = [r for r in rows if r["follow_up"]]
    later = [r for r in rows if r["turn"] > 1]
    answered = [r for r in ans_rows if not r["refused"] and not r["error"]]

    def share(xs: list, key: str) -> float | None:
        return round(sum(bool(x[key]) for x in xs) / len(xs), 4) if xs else None

    result = {"_meta": {"set": devset.stem, "model": served, "documents": len(docs), "questions": len(rows),
                        "answerable": len(ans_rows), "out_of_scope": len(oos), "follow_ups": len(fups)},
              "ragkb": {"contains": share(ans_rows, "contains"),
                        "right_answer_and_page": round(sum(r["contains"] and r["right_page"] for r in ans_rows)
                                                       / len(ans_rows), 4) if ans_rows else None,
                        "right_page": share(ans_rows, "right_page"),
                        "false_refusal_rate": share(ans_rows, "refused"),
                        "unanswerable_refusal_rate": share(oos, "refused"),
                        "unanswerable_refused_without_model": round(
                            sum(r["refused"] and not r["model_called"] for r in oos) / len(oos), 4) if oos else None,
                        # out-of-scope questions answered and not flagged as the model's own knowledge
                        "unanswerable_answered_unflagged": round(sum(not r["refused"] and not r["memory"]
                                                                     for r in oos) / len(oos), 4) if oos else None,
                        "memory_flag_rate": share(answered, "memory"),
                        "follow_ups_right": share(fups, "contains"),
                        "answer_in_prompt": share(ans_rows, "in_prompt"),
                        "right_with_answer_in_prompt": share([r for r in ans_rows if r["in_prompt"]], "contains"),
                        "condense_calls_per_turn": share(later, "condensed"),
                        "condense_ms_p50": _median([r["condense_ms"] for r in later if r["condense_ms"]]),
                        "unsupported_claim_rate": share(answered, "unsupported"),
                        "errors": sum(1 for r in rows if r["error"]),
                        "seconds_per_question": round(sum(r["seconds"] for r in rows) / max(1, len(rows)), 2),
                        "ttft_ms_p50": _median([r["ttft_ms"] for r in rows if r["ttft_ms"]]),
                        "prompt_tokens_p50": _median([r["prompt_tokens"] for r in rows if r["prompt_tokens"]])}}
    if rules := rule_effects(ans_rows, ["contains", "right_and_page", "refused"]):
        result["ragkb"]["rules"] = rules  # counted over the answerable questions
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / f"{devset.stem}.answers.per_query.json").write_text(
            json.dumps(per_q, ensure_ascii=False, indent=1), encoding="utf-8")
    return result


def _word_support(service, ans, question: str) -> float | None:  # noqa: ANN001
    """rag.answer.claims.lowest_word_support of the answer against the chunks it cites (to choose
    RAGKB_CLAIM_MIN_WORD_SUPPORT on)."""
    from rag.answer.claims import lowest_word_support

    docs = [s for s in ans.sources if s.kind == "document"]
    rows = service.answers.store.registry.chunks_by_ids([s.chunk_id for s in docs])
    blocks = {s.n: rows[s.chunk_id].text for s in docs if s.chunk_id in rows}
    return lowest_word_support(ans.text, blocks, question) if blocks else None


def _median(xs: list[float]) -> float | None:
    import statistics

    return round(statistics.median(xs), 1) if xs else None


def evaluate_pages(devsets: list[Path], settings: Settings, public: Path | None = None, k: int = 5,
                   out_dir: Path | None = None, progress=print) -> dict:  # noqa: ANN001
    """`ragkb eval pages`: for the answerable, self-contained questions of manual dev sets (follow-ups need the
    conversation: left out), is a gold page among the top `k` search hits? Per set and language, for ragkb's fused
    search and for each leg alone. A PDF shared by several sets is ingested once."""
    from app.evaluation.answers import scratch_store
    from ingest.pipeline import ingest_paths
    from rag.retrieval import search

    configs = {"ragkb": None, "bm25_leg": (0.0, 1.0), "dense_leg": (1.0, 0.0)}
    per_q: dict[str, dict] = {}
    result: dict = {}
    with scratch_store(settings) as (store, _):
        kbs: dict[Path, str] = {}
        for devset in devsets:
            pdf = find_pdf(devset, public)
            if pdf not in kbs:
                progress(f"[{devset.stem}] ingesting {pdf.name}")
                kbs[pdf] = pdf.stem
                ingest_paths(store, pdf.stem, [pdf])
            items = [json.loads(line) for line in devset.read_text(encoding="utf-8").splitlines() if line.strip()]
            items = [it for it in items if it["answers"] and it.get("pages") and not it.get("follows")]
            for it in items:
                row = {"set": devset.stem, "lang": it.get("lang", "?"), "question": it["question"],
                       "pages": it["pages"]}
                for cfg, weights in configs.items():
                    hits = search(store, kbs[pdf], it["question"], k=k, weights=weights)
                    row[cfg] = next((i for i, h in enumerate(hits, 1) if h.page in it["pages"]), None)
                per_q[f"{devset.stem}/{it['id']}"] = row
    groups: dict[str, list[dict]] = {}
    for row in per_q.values():
        for key in (row["set"], f"{row['set']} ({row['lang']})", "all", f"all ({row['lang']})"):
            groups.setdefault(key, []).append(row)
    # a row per system, a column per set (and language), shares as every eval table has them; the counts beside
    found = {cfg: {key: sum(r[cfg] is not None for r in rows) for key, rows in sorted(groups.items())} for cfg in configs}
    for cfg in configs:
        result[cfg] = {key: round(n / len(groups[key]), 4) for key, n in found[cfg].items()}
    result["_counts"] = {cfg: {key: f"{n}/{len(groups[key])}" for key, n in found[cfg].items()} for cfg in configs}
    result["_meta"] = {"k": k, "embedding_model": settings.embedding_model,
                       "sets": [d.stem for d in devsets], "questions": len(per_q)}
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "pages.per_query.json").write_text(json.dumps(per_q, ensure_ascii=False, indent=1), encoding="utf-8")
    return result
